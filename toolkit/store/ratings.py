"""The blinded rater's work list: photo sets to grade under opaque ids, one rating per rater and set, and a
blind re-rating subset for intra-rater agreement.

A **photo set** is what one grade is given to: the photo of a visit for a severity scale (WSRS), or the pair
(baseline photo, follow-up photo) for a scale graded against baseline (GAIS), for every visit of each scale
endpoint of the study. A rater sees a set only as an opaque id, its scale and its images, re-encoded without
metadata and without the file's name: never the subject, visit, session, arm or date.

Each rater gets the sets in an order of their own that follows neither subject nor visit nor time (a hash of
the rater's name and the set), the same order whenever the list is opened again, so work resumes where it
stopped. Once every set has its first rating, a subset (the scale's ``rerate_fraction``, chosen per rater by
the same kind of hash) comes back for a second, blind rating: the intra-rater agreement. The database keeps
one rating per rater, set and pass, so a station open twice cannot file a set twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.audit import sha256_file
from toolkit.store.base import StoreBase

__all__ = ["RatingSet", "Ratings"]

#: longest side of an image handed to the rater (pixels)
DISPLAY_MAX_PX = 960


@dataclass(frozen=True)
class RatingSet:
    """A photo set as the blinded rater sees it."""

    #: opaque id (the same for every rater; it tells nothing of subject, visit or time)
    set_id: str
    #: the scale to grade, e.g. ``"WSRS"``
    scale: str
    #: number of images: 1, or 2 for a scale graded against baseline (baseline first)
    photos: int
    #: ``True`` for the blind second rating of the intra-rater agreement subset
    repeat: bool = False


@dataclass(frozen=True)
class _Set:
    set_id: str
    scale: str
    paths: tuple[str, ...]
    sha256: tuple[str, ...]
    subject_pk: int
    visit_pk: int
    site: str | None
    rerate_fraction: float
    #: the day the (follow-up) photo was taken, when it carries a time: the day the subject was assessed
    taken_on: date | None = None
    #: the subject and visit of the (follow-up) photo (never shown to a rater)
    subject_id: str = ""
    visit_id: str = ""


def _unit(*parts: str) -> float:
    """A number in [0, 1) from a hash of ``parts`` (stable, looks random)."""
    digest = hashlib.sha256("\n".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Ratings(StoreBase):
    """The blinded rating station's side of the store (see the module description)."""

    def _photo_sets(self, s: Session) -> list[_Set]:
        rows = s.execute(
            select(m.PhotoRow.id, m.PhotoRow.path, m.PhotoRow.sha256, m.PhotoRow.view, m.SubjectRow.id,
                   m.SubjectRow.site, m.VisitRow.id, m.VisitRow.visit_id, m.PhotoRow.captured_at,
                   m.SubjectRow.subject_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .join(m.VisitRow, m.VisitRow.id == m.PhotoRow.visit_pk)
            .where(m.SubjectRow.study_id == self.study_id)
            .order_by(m.PhotoRow.id)
        ).all()
        views = {r[3] for r in rows}
        view = "frontal" if "frontal" in views else None
        first: dict[tuple[int, str], Any] = {}
        for r in rows:  # the first photo of each subject and visit (in the graded view) is the one rated
            if view is None or r[3] == view:
                first.setdefault((r[4], r[7]), r)
        baseline = self.info.baseline_visit.id if self.info.baseline_visit else None
        out: list[_Set] = []
        for e in self.info.endpoints:
            if e.kind != "scale":
                continue
            scale = e.metric or e.code
            for (subject_pk, visit_id), r in first.items():
                if e.visits and visit_id not in e.visits:
                    continue
                photos = [r]
                if e.against_baseline:
                    base = first.get((subject_pk, baseline))
                    if visit_id == baseline or base is None:
                        continue
                    photos = [base, r]
                shas = tuple(p[2] for p in photos)
                set_id = hashlib.sha256("\n".join((self.study_id, scale, *shas)).encode()).hexdigest()[:12]
                out.append(_Set(set_id, scale, tuple(p[1] for p in photos), shas, subject_pk, r[6], r[5],
                                e.rerate_fraction, r[8].date() if r[8] is not None else None, r[9], visit_id))
        return out

    def _my_sets(self, s: Session) -> list[_Set]:
        site = self.identity.site if self.identity else None
        return [x for x in self._photo_sets(s) if not site or x.site in (None, site)]

    def _done(self, s: Session, rater: str) -> set[tuple[str, int]]:
        return set(s.execute(
            select(m.AssessmentRow.rating_set, m.AssessmentRow.repeat).where(
                m.AssessmentRow.rater == rater, m.AssessmentRow.rating_set.is_not(None))
        ).all())  # fmt: skip

    def _rerate_subset(self, sets: list[_Set], rater: str, done: set[tuple[str, int]]) -> set[str]:
        """The sets this rater grades twice: per scale, those whose hash falls under the fraction, those already
        graded twice, and at least one set when the fraction is above zero."""
        chosen: set[str] = set()
        for scale in {x.scale for x in sets}:
            mine = [x for x in sets if x.scale == scale and x.rerate_fraction > 0]
            if not mine:
                continue
            pick = {x.set_id for x in mine if _unit("rerate", self.study_id, rater, x.set_id) < x.rerate_fraction}
            pick |= {x.set_id for x in mine if (x.set_id, 1) in done}
            if not pick:
                pick = {min(mine, key=lambda x: _unit("rerate", self.study_id, rater, x.set_id)).set_id}
            chosen |= pick
        return chosen

    def _pending(self, s: Session, rater: str) -> list[tuple[_Set, int]]:
        sets = self._my_sets(s)
        done = self._done(s, rater)
        first = sorted((x for x in sets if (x.set_id, 0) not in done),
                       key=lambda x: _unit("order", self.study_id, rater, x.set_id))
        if first:
            return [(x, 0) for x in first]
        again = self._rerate_subset(sets, rater, done)
        second = sorted((x for x in sets if x.set_id in again and (x.set_id, 1) not in done),
                        key=lambda x: _unit("again", self.study_id, rater, x.set_id))
        return [(x, 1) for x in second]

    def rating_queue(self) -> list[RatingSet]:
        """The logged-in rater's photo sets still to grade, in the rater's own order (see the module text).

        First ratings come first; the re-rating subset follows once every set has its first rating.
        """
        who = self._require("assess", "rate photos")
        with self.reading() as s:
            return [RatingSet(x.set_id, x.scale, len(x.paths), bool(r)) for x, r in self._pending(s, who.username)]

    def rating_progress(self) -> dict[str, int]:
        """How far the logged-in rater is: ``rated`` (first ratings), ``sets``, ``rerated``, ``rerate_total``."""
        who = self._require("assess", "rate photos")
        with self.reading() as s:
            sets = self._my_sets(s)
            done = self._done(s, who.username)
            again = self._rerate_subset(sets, who.username, done)
        ids = {x.set_id for x in sets}
        return {
            "sets": len(ids),
            "rated": sum(1 for i in ids if (i, 0) in done),
            "rerate_total": len(again),
            "rerated": sum(1 for i in again if (i, 1) in done),
        }

    def rating_images(self, set_id: str) -> list[bytes]:
        """The images of a photo set as JPEG bytes, baseline first: checked against their SHA-256, at most
        :data:`DISPLAY_MAX_PX` on the long side, without any metadata or file name."""
        self._require("assess", "rate photos")
        with self.reading() as s:
            match = [x for x in self._my_sets(s) if x.set_id == str(set_id)]
        if not match:
            raise StoreError(f"no photo set {set_id!r} to rate; see the rating queue", field="set_id")
        return [_display_jpeg(self.resolve_path(p), sha, str(set_id)) for p, sha in zip(match[0].paths,
                                                                                       match[0].sha256, strict=True)]

    def rate(self, set_id: str, *, score: float, repeat: bool = False, scale: str | None = None) -> int:
        """File the logged-in rater's grade of a photo set; return the assessment id.

        The grade goes to the subject and visit of the set's (follow-up) photo, with the rater's printed name
        as assessor. A set is graded once per rater (``repeat=False``), and once more (``repeat=True``, as the
        queue's :attr:`RatingSet.repeat` says) if it is in the rater's re-rating subset, after every set has its
        first rating.

        Raises
        ------
        StoreError
            The set is unknown, or this rater has already graded it (also from another window).
        DataError
            The grade is outside the scale (``fields["score"]``).
        """
        who = self._require("assess", "rate photos")
        set_id = str(set_id)
        with self.session() as s:
            wanted = int(bool(repeat))
            pending = {(x.set_id, r): x for x, r in self._pending(s, who.username)}
            if (set_id, wanted) not in pending:
                if not any(x.set_id == set_id for x in self._my_sets(s)):
                    raise StoreError(f"no photo set {set_id!r} to rate; see the rating queue", field="set_id")
                if (set_id, wanted) in self._done(s, who.username):
                    raise StoreError(f"photo set {set_id} is already graded by {who.full_name}"
                                     f"{' a second time' if wanted else ''}: one rating per rater and photo set "
                                     "(perhaps from another window)", field="set_id")
                raise StoreError(f"photo set {set_id} is not due for a second rating by {who.full_name}: the "
                                 "re-rating subset comes after every first rating", field="set_id")
            target = pending[(set_id, wanted)]
            if scale is not None and scale != target.scale:
                raise DataError(f"photo set {set_id} is graded on {target.scale}, not {scale}", field="scale")
            value = self._check_score(target.scale, score)  # type: ignore[attr-defined]
            row = m.AssessmentRow(subject_pk=target.subject_pk, visit_pk=target.visit_pk, scale=target.scale,
                                  side=None, score=value, assessor=who.full_name, rater=who.username,
                                  rating_set=set_id, repeat=wanted,
                                  # the subject was assessed when the photo was taken (today if it has no time)
                                  assessed_on=target.taken_on or date.today())
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise StoreError(f"photo set {set_id} was graded by {who.full_name} meanwhile (another window): "
                                 "one rating per rater and photo set; nothing was changed", field="set_id") from None
            return row.id

    def rating_set_key(self) -> Any:
        """Which subject and visit each photo set shows: ``set_id``, ``scale``, ``subject_id``, ``visit_id``,
        ``photos`` (1, or 2 for baseline and follow-up).

        For the data manager who reconciles the station's work (what is still ungraded, which visit a query is
        about); a blinded rater may not read it, the station never shows it.
        """
        import pandas as pd

        self._require("correct", "see which subject and visit a photo set shows")
        with self.reading() as s:
            sets = self._photo_sets(s)
        return pd.DataFrame([(x.set_id, x.scale, x.subject_id, x.visit_id, len(x.paths)) for x in sets],
                            columns=["set_id", "scale", "subject_id", "visit_id", "photos"])

    def rating_records(self) -> Any:
        """Every station grade without subject or arm: ``set_id``, ``scale``, ``rater``, ``repeat``, ``score``
        (for rater agreement)."""
        import pandas as pd

        self._require("read_records", "read assessments")
        with self.reading() as s:
            rows = s.execute(
                select(m.AssessmentRow.rating_set, m.AssessmentRow.scale, m.AssessmentRow.rater,
                       m.AssessmentRow.repeat, m.AssessmentRow.score)
                .join(m.SubjectRow, m.SubjectRow.id == m.AssessmentRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id, m.AssessmentRow.rating_set.is_not(None))
                .order_by(m.AssessmentRow.id)
            ).all()
        return pd.DataFrame(rows, columns=["set_id", "scale", "rater", "repeat", "score"])


def _display_jpeg(path: Path, sha256: str, set_id: str) -> bytes:
    import cv2
    import numpy as np

    if not path.is_file() or sha256_file(path) != sha256:
        raise StoreError(f"photo set {set_id}: a stored photo is missing or no longer matches its SHA-256; "
                         "run toolkit audit verify", field="set_id")
    image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise StoreError(f"photo set {set_id}: a stored photo cannot be decoded", field="set_id")
    h, w = image.shape[:2]
    scale = DISPLAY_MAX_PX / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:  # pragma: no cover - encoding a decoded image does not fail
        raise StoreError(f"photo set {set_id}: cannot encode the image for display", field="set_id")
    return data.tobytes()
