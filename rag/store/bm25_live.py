"""BM25 that a PostgreSQL replica brings up to date by delta instead of rebuilding it
(rag/store/postgres.py): a publish adds a small segment of postings, a delete masks chunks.

Scores are the local store's, bm25s's "lucene" BM25 (rag/store/sparse.py, k1 0.9, b 0.4), to
the float32 bit: per matching chunk and query term

    idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)),   idf = ln(1 + (N - df + 0.5) / (df + 0.5))

computed as bm25s computes it (idf rounded to float32, the rest in float64, each term's score
rounded to float32 and summed over the query terms in their order, a repeated term counting
again), with N, df and avgdl those of the live chunks. bm25s indexes a chunk without terms as
one empty token: it counts in N with length 1 and matches nothing; so here. The difference is
when they are computed: bm25s bakes idf and the length norm into every posting, so any change
of N or avgdl means rebuilding all of them; here a posting holds only its term frequency, and
the rest is computed at query time over the postings of the query's terms (df as the count of
live postings), so a change costs what it changes.

Layout: chunks have slots (0, 1, ...; never reused within an index); per slot its vid, its
length and whether it is live. Postings are term-major, in segments that are never changed
once made (a snapshot shares them with the next one): `indptr` (per term id, over the terms
the segment knows), `slots` (int32) and `tf` (float32). A delta adds one segment for the
chunks it publishes and clears the live bit of those it retires; delta segments are merged
pairwise as they grow (like a binary counter: few segments, each chunk merged about log n
times), and `compacted()` rewrites everything into one segment without the dead slots once
they or the deltas are a quarter of the index (a linear pass, no sort). Term ids come from one
vocabulary that only grows, shared by the snapshots of one replica; a snapshot ignores ids
past the terms it knows.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import numpy as np

BATCH = 20_000            # chunks per segment built at once (bounds the full load's temporaries)
MERGE_BLOCK = 4_000_000   # postings per step of a merge (bounds its temporaries)
COMPACT_FRACTION = 0.25   # compact when dead slots + delta slots reach this share of the slots


def new_vocab() -> defaultdict:
    """term -> id; a term not seen yet gets the next id when looked up with []."""
    vocab: defaultdict = defaultdict()
    vocab.default_factory = vocab.__len__
    return vocab


@dataclass(frozen=True)
class Segment:
    """Term-major postings of some slots: those of term t are slots[indptr[t]:indptr[t + 1]]."""

    indptr: np.ndarray  # int64, n_terms + 1
    slots: np.ndarray   # int32
    tf: np.ndarray      # float32

    @property
    def n_terms(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.slots)

    def counts(self, n_terms: int) -> np.ndarray:
        c = np.zeros(n_terms, dtype=np.int64)
        c[:self.n_terms] = np.diff(self.indptr)
        return c


def _segment(term_lists: list[list[str]], vocab: defaultdict, first_slot: int) -> tuple[Segment, np.ndarray]:
    """Postings of chunks given as term lists, in slots first_slot, first_slot + 1, ...;
    and their lengths as bm25s counts them."""
    n = len(term_lists)
    lens = np.fromiter(map(len, term_lists), dtype=np.int64, count=n)
    flat = list(itertools.chain.from_iterable(term_lists))
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    n_terms = len(vocab)
    key = (np.repeat(np.arange(n, dtype=np.int64), lens) << 32) | ids
    pairs, tf = np.unique(key, return_counts=True)  # (chunk, term) in chunk order
    terms = pairs & 0xFFFFFFFF
    order = np.argsort(terms, kind="stable")      # term-major, chunks in order within a term
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=n_terms), out=indptr[1:])
    slots = ((pairs[order] >> 32) + first_slot).astype(np.int32)
    return Segment(indptr, slots, tf[order].astype(np.float32)), np.maximum(lens, 1).astype(np.int32)


def _merge(segments: list[Segment], n_terms: int, renumber: np.ndarray | None = None) -> Segment:
    """One segment with the postings of `segments`, each term's in segment order. `renumber`
    (old slot -> new slot, or -1): postings of slots mapped to -1 are left out. Linear: each
    posting is written straight to its place, in blocks of MERGE_BLOCK postings."""
    if not segments:
        return Segment(np.zeros(n_terms + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                       np.zeros(0, dtype=np.float32))
    counts = []
    for seg in segments:
        if renumber is None:
            counts.append(seg.counts(n_terms))
        else:
            c = np.zeros(n_terms, dtype=np.int64)
            for lo, hi, terms in _blocks(seg):
                c += np.bincount(terms[renumber[seg.slots[lo:hi]] >= 0], minlength=n_terms)
            counts.append(c)
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.sum(counts, axis=0), out=indptr[1:])
    out_slots = np.empty(indptr[-1], dtype=np.int32)
    out_tf = np.empty(indptr[-1], dtype=np.float32)
    at = indptr[:-1].copy()  # where each term's postings from the next segment go
    for seg, c in zip(segments, counts):
        for lo, hi, terms in _blocks(seg):  # blocks hold whole terms, in term order
            slots, tf = seg.slots[lo:hi], seg.tf[lo:hi]
            if renumber is not None:
                slots = renumber[slots]
                keep = slots >= 0
                slots, tf, terms = slots[keep], tf[keep], terms[keep]
            if not len(terms):
                continue
            # a posting's rank among its term's postings here: its index less its term's first
            block = np.bincount(terms, minlength=n_terms)
            first = np.cumsum(block) - block
            dest = at[terms] + (np.arange(len(terms)) - first[terms])
            out_slots[dest] = slots
            out_tf[dest] = tf
        at += c
    return Segment(indptr, out_slots, out_tf)


def _blocks(seg: Segment) -> Iterable[tuple[int, int, np.ndarray]]:
    """(lo, hi, term id of each posting in lo:hi) in blocks of about MERGE_BLOCK postings."""
    n_terms = seg.n_terms
    t0 = 0
    while t0 < n_terms:
        lo = int(seg.indptr[t0])
        t1 = max(t0 + 1, int(np.searchsorted(seg.indptr, lo + MERGE_BLOCK, side="right")) - 1)
        t1 = min(t1, n_terms)
        hi = int(seg.indptr[t1])
        if hi > lo:
            yield lo, hi, np.repeat(np.arange(t0, t1, dtype=np.int64), np.diff(seg.indptr[t0:t1 + 1]))
        t0 = t1


class LiveBM25:
    """BM25 over the live chunks of one index version; `apply` makes the next version's."""

    method = "lucene"

    def __init__(self, vocab: defaultdict, n_terms: int, segments: list[Segment], main_slots: int,
                 slot_vids: np.ndarray, dl: np.ndarray, alive: np.ndarray, k1: float = 0.9, b: float = 0.4):
        self.vocab, self.n_terms = vocab, n_terms
        self.segments = segments          # segments[0]: slots < main_slots; the rest: deltas
        self.main_slots = main_slots
        self.slot_vids, self.dl, self.alive = slot_vids, dl, alive
        self.k1, self.b = k1, b
        self.n = int(alive.sum())
        self.n_dead = len(alive) - self.n
        live_len = int(dl[alive].sum(dtype=np.int64))
        # bm25s: avgdl is a float64 mean; k1 * ((1 - b) + b * dl / avgdl) per chunk, in float64
        self.avgdl = live_len / self.n if self.n else 1.0
        self.norm = self.k1 * ((1 - self.b) + self.b * dl.astype(np.float64) / self.avgdl)

    # ----------------------------------------------------------------- making
    @classmethod
    def build(cls, batches: Iterable[tuple[np.ndarray, list[list[str]]]], k1: float = 0.9,
              b: float = 0.4) -> "LiveBM25":
        """The index of all live chunks, given as (vids, term lists) batches in vid order."""
        vocab = new_vocab()
        segments, vids, dls = [], [], []
        n = 0
        for batch_vids, term_lists in batches:
            for start in range(0, len(term_lists), BATCH):
                seg, dl = _segment(term_lists[start:start + BATCH], vocab, n)
                segments.append(seg)
                dls.append(dl)
                n += len(dl)
            vids.append(np.asarray(batch_vids, dtype=np.int64))
        n_terms = len(vocab)
        main = segments[0] if len(segments) == 1 else _merge(segments, n_terms)
        slot_vids = np.concatenate(vids) if vids else np.zeros(0, dtype=np.int64)
        dl = np.concatenate(dls) if dls else np.zeros(0, dtype=np.int32)
        if len(slot_vids) != n:
            raise ValueError("one term list per vid")
        return cls(vocab, n_terms, [main], n, slot_vids, dl, np.ones(n, dtype=bool), k1, b)

    def apply(self, added_vids: np.ndarray, added_terms: list[list[str]], retired_vids: np.ndarray) -> "LiveBM25":
        """The next version's index: these chunks added, those retired (vids not held are
        ignored: chunks published and deleted again between the two versions). This one is
        left as it was (searches may be using it)."""
        added_vids = np.asarray(added_vids, dtype=np.int64)
        if len(added_vids) != len(added_terms):
            raise ValueError("one term list per vid")
        alive = self.alive.copy()
        retired_vids = np.asarray(retired_vids, dtype=np.int64)
        if retired_vids.size:
            alive[np.isin(self.slot_vids, retired_vids)] = False
        segments = list(self.segments)
        slot_vids, dl = self.slot_vids, self.dl
        if len(added_vids):
            seg, new_dl = _segment(added_terms, self.vocab, len(slot_vids))
            segments.append(seg)
            slot_vids = np.concatenate([slot_vids, added_vids])
            dl = np.concatenate([dl, new_dl])
            alive = np.concatenate([alive, np.ones(len(added_vids), dtype=bool)])
        n_terms = len(self.vocab)
        # Deltas merge pairwise while the older is no bigger than the newer: O(log n) segments.
        while len(segments) > 2 and segments[-2].nnz <= segments[-1].nnz:
            segments[-2:] = [_merge(segments[-2:], n_terms)]
        return LiveBM25(self.vocab, n_terms, segments, self.main_slots, slot_vids, dl, alive, self.k1, self.b)

    @property
    def untidy(self) -> float:
        """Dead slots and delta slots, as a share of all slots: what compaction would clear."""
        total = len(self.slot_vids)
        return (self.n_dead + total - self.main_slots) / total if total else 0.0

    def needs_compaction(self) -> bool:
        return self.untidy >= COMPACT_FRACTION and len(self.slot_vids) > 1000

    def compacted(self) -> "LiveBM25":
        """The same index (the same scores) in one segment, without dead slots."""
        renumber = np.full(len(self.alive), -1, dtype=np.int64)
        renumber[self.alive] = np.arange(self.n)
        n_terms = self.n_terms
        main = _merge(self.segments, n_terms, renumber)
        return LiveBM25(self.vocab, n_terms, [main], self.n, self.slot_vids[self.alive], self.dl[self.alive],
                        np.ones(self.n, dtype=bool), self.k1, self.b)

    # -------------------------------------------------------------- reading
    def __len__(self) -> int:
        return self.n

    @property
    def vids(self) -> np.ndarray:
        """The live chunks' vids."""
        return self.slot_vids[self.alive] if self.n_dead else self.slot_vids

    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots, tf) of the live chunks with this term."""
        parts = []
        for seg in self.segments:
            if term_id < seg.n_terms:
                lo, hi = seg.indptr[term_id], seg.indptr[term_id + 1]
                if hi > lo:
                    parts.append((seg.slots[lo:hi], seg.tf[lo:hi]))
        if not parts:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        slots = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        tf = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        if self.n_dead:
            keep = self.alive[slots]
            slots, tf = slots[keep], tf[keep]
        return slots, tf

    def search(self, terms: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (vids, scores), best first (equal scores: lower vid first); only chunks with a
        positive score."""
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        if not self.n or k <= 0:
            return empty
        ids = [i for i in map(self.vocab.get, terms) if i is not None and i < self.n_terms]
        if not ids:
            return empty
        scores = np.zeros(len(self.slot_vids), dtype=np.float32)
        n = self.n
        for t in ids:  # a repeated query term counts again, as in bm25s
            slots, tf = self.postings(t)
            df = len(slots)
            if not df:
                continue
            idf = np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
            tf64 = tf.astype(np.float64)
            scores[slots] += (idf * (tf64 / (self.norm[slots] + tf64))).astype(np.float32)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            kth = -np.partition(-scores[hits], k - 1)[k - 1]
            hits = hits[scores[hits] >= kth]  # ties at the k-th score all stay for the sort
        order = np.lexsort((self.slot_vids[hits], -scores[hits]))[:k]
        hits = hits[order]
        return self.slot_vids[hits], scores[hits]
