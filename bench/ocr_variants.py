"""Session-option variants of the OCR engine, timed in one process on the pages of
bench/ocr_bench.py's 20-page scan (rendered at 150 dpi, grey, as in the scan PDF).

    python bench/ocr_variants.py VARIANT [VARIANT ...] [--pages 20] [--rounds 2]

Runs the variants interleaved (a b b a ...) and prints per variant: detection and recognition
seconds, wall, process CPU time and minor page faults, whether each page's text equals the first
variant's, and the visible CER against the text layer (bench/ocr_bench.py's measure), then the
mean wall and CPU time as ratios to the first variant. Variants (comma-joined flags):
  base          RapidOCR as ingest.ocr built it before: threads spinning, memory arena off
  nospin        session.intra_op.allow_spinning=0 on both models (what ingest.ocr does now)
  arena         enable_cpu_mem_arena=True (arenadet, arenarec: for that model only)
  seq           execution_mode ORT_SEQUENTIAL (already the default; explicit)
  t1det/t1rec   one intra-op thread for that model
  detNN         detection on the page scaled to NN%, lines cropped from the full page
  splitK        recognition batches padded as RapidOCR pads them, run K lines a call
  limNNNN       RapidOCR's own detection resize with the longest side at most NNNN px (its
                limit_type max, whose side RapidOCR otherwise picks itself); boxes are mapped
                back and lines cropped from the full page, as detNN
  batchN        recognition batches of N lines (RapidOCR's rec_batch_num; default 6)
  boxNN         detection box threshold 0.NN (RapidOCR's box_thresh; default 0.5)
  recwNNN       recognition input at least NNN px wide (RapidOCR's rec_img_shape width, default
                320: every shorter line of a batch is padded to 320)
  linesB_M_T    ingest.ocr.LineReader: B lines a batch, each batch at least M px wide and T px
                wider than its widest line (lines6_320_0 is about RapidOCR's own padding; its widest
                line may lose a pixel to rounding)
  hswish        both models with their hard-swishes fused as they load (ingest.ocr.fuse_hard_swish)
  pagesK        K pages read at once from K Python threads, each model's session on one
                intra-op thread (ONNX Runtime runs concurrent Run calls on the callers' threads)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import ocr  # noqa: E402


TRUTHS: list[str] = []


def pages_images(n: int):
    import pypdfium2 as pdfium
    from bench.ocr_bench import sample_pages

    pages = sample_pages(Path(__file__).resolve().parents[2] / "shared" / "eval" / "pdfs" / "real", 30)
    pages = (pages * n)[:n]
    TRUTHS[:] = [t for _f, _i, t in pages]
    out = []
    for f, i, _t in pages:
        doc = pdfium.PdfDocument(str(f))
        out.append(ocr.render_page(doc[i], ocr.OCR_DPI, 10_000).convert("L").convert("RGB"))
        doc.close()
    return out


def build(variant: str):
    """RapidOCR as ingest.ocr built it before this bench (spinning threads, arena off), then
    changed by the variant's flags."""
    import numpy as np
    import onnxruntime as ort
    from rapidocr_onnxruntime import RapidOCR

    flags = set(variant.split(","))
    threads = max(1, min(len(os.sched_getaffinity(0)), ocr.MAX_THREADS))
    kwargs = {}
    for f in flags:
        if f.startswith("batch"):
            kwargs.update(rec_batch_num=int(f[5:]))
        elif f.startswith("box"):
            kwargs.update(det_box_thresh=int(f[3:]) / 100)
        elif f.startswith("recw"):
            kwargs.update(rec_img_shape=[3, 48, int(f[4:])])
    parallel = max([int(f[5:]) for f in flags if f.startswith("pages")] or [1])
    if parallel > 1:
        flags |= {"t1det", "t1rec"}
    eng = RapidOCR(max_side_len=ocr.MAX_SIDE_PX, det_unclip_ratio=ocr.UNCLIP_RATIO, use_cls=False,
                   intra_op_num_threads=threads, inter_op_num_threads=1, **kwargs)
    eng.parallel = parallel

    def session(old, nthreads, model):
        so = ort.SessionOptions()
        so.log_severity_level = 4
        so.enable_cpu_mem_arena = "arena" in flags or "arena" + model in flags
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = nthreads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if "nospin" in flags:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        source = ocr.fused_model(old._model_path) if "hswish" in flags else old._model_path
        return ort.InferenceSession(source, sess_options=so,
                                    providers=[("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})])

    if flags & {"nospin", "arena", "arenadet", "arenarec", "seq", "t1det", "t1rec", "hswish"}:
        det, rec = eng.text_det.infer, eng.text_rec.session
        det.session = session(det.session, 1 if "t1det" in flags else threads, "det")
        rec.session = session(rec.session, 1 if "t1rec" in flags else threads, "rec")
    split = [int(f[5:]) for f in flags if f.startswith("split")]
    if split:
        rec, k = eng.text_rec.session, split[0]

        class Split:
            def __call__(self, x):
                return [np.concatenate([rec(x[i:i + k])[0] for i in range(0, len(x), k)])]

            def __getattr__(self, a):
                return getattr(rec, a)

        eng.text_rec.session = Split()
    limit = [int(f[3:]) for f in flags if f.startswith("lim")]
    if limit:  # limit_type "max" alone does not do it: RapidOCR then picks 960/1500/2000 itself
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess
        det = eng.text_det
        det.get_preprocess = lambda _longest: DetPreProcess(limit[0], "max", det.mean, det.std)
    lines = [f for f in flags if f.startswith("lines")]
    if lines:  # linesB_M_T: ingest.ocr.LineReader, B lines a batch, at least M px, T px of tail
        b, m, t = (int(v) for v in lines[0][5:].split("_"))
        eng.text_rec = ocr.LineReader(eng.text_rec, b, m, t)
    scaled = [int(f[3:]) / 100 for f in flags if f.startswith("det") and f[3:].isdigit()]
    return ScaledDet(eng, scaled[0]) if scaled else eng


class ScaledDet:
    """RapidOCR with detection on the page scaled by `scale`, lines cropped from the full page."""

    def __init__(self, eng, scale):
        self.eng, self.scale = eng, scale

    def __call__(self, image):
        import cv2
        import numpy as np

        eng = self.eng
        img = np.asarray(image)[:, :, ::-1].copy()  # RGB -> BGR, as RapidOCR's LoadImage
        small = cv2.resize(img, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        boxes, det_s = eng.text_det(small)
        if boxes is None or len(boxes) == 0:
            return None, None
        boxes = eng.sorted_boxes(boxes / self.scale)
        crops = eng.get_crop_img_list(img, [b.astype(np.float32) for b in boxes])
        rec, rec_s = eng.text_rec(crops)
        out = [[b.tolist(), t, s] for b, (t, s) in zip(boxes, rec) if s >= eng.text_score]
        return out or None, [det_s, 0.0, rec_s]


def run(eng, images):
    import resource
    det = rec = 0.0
    texts = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    parallel = getattr(eng, "parallel", 1)
    if parallel > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(eng, images))
    else:
        results = (eng(im) for im in images)
    for result, el in results:
        if el:
            det += el[0]
            rec += el[-1]
        texts.append(ocr.boxes_to_text(result or []))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    run.cpu = (r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt)
    return det, rec, wall, texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    images = pages_images(args.pages)
    engines = {v: build(v) for v in args.variants}
    order = []
    for r in range(args.rounds):
        order += args.variants if r % 2 == 0 else list(reversed(args.variants))
    ref = None
    totals = {v: [] for v in args.variants}
    cpu = {v: [] for v in args.variants}
    for v in order:
        load = os.getloadavg()[0]
        det, rec, wall, texts = run(engines[v], images)
        ref = ref or texts
        same = sum(a == b for a, b in zip(texts, ref))
        from bench.ocr_bench import levenshtein, normalise, visible
        cer = (sum(levenshtein(normalise(a), normalise(visible(t))) for a, t in zip(texts, TRUTHS))
               / sum(len(normalise(visible(t))) for t in TRUTHS))
        totals[v].append(wall)
        cpu[v].append(run.cpu[0] + run.cpu[1])
        print(f"{v:24} det {det:6.1f} s  rec {rec:6.1f} s  wall {wall:6.1f} s  same text {same}/{len(ref)}  CER visible {cer:.2%}  user {run.cpu[0]:6.1f} s sys {run.cpu[1]:5.1f} s minflt {run.cpu[2]}  load {load:.2f}", flush=True)
    base, base_cpu = sum(totals[args.variants[0]]), sum(cpu[args.variants[0]])
    for v in args.variants:
        print(f"{v:24} mean wall {sum(totals[v]) / len(totals[v]):6.1f} s  ratio to {args.variants[0]}: {sum(totals[v]) / base:.3f}"
              f"  mean CPU {sum(cpu[v]) / len(cpu[v]):6.1f} s  ratio {sum(cpu[v]) / base_cpu:.3f}")


if __name__ == "__main__":
    main()
