"""What a rater reads beside a clinician scale: the words of each grade (anchors), and whether the scale is
rated against the baseline photo.

Grades of the known scales paraphrase their published definitions (WSRS: Day et al., Am J Clin Dermatol
2004; GAIS: Narins et al., Dermatol Surg 2003). A study may give its own anchors, and pictures of the grades
where its scale defines them, in ``study.yaml`` (``anchors:``, ``grade_pictures:`` of a scale endpoint).
"""

from __future__ import annotations

__all__ = ["KNOWN_ANCHORS", "RATED_AGAINST_BASELINE"]

#: scale -> grade -> what the grade means
KNOWN_ANCHORS: dict[str, dict[float, str]] = {
    "WSRS": {
        1: "Absent: no visible fold, the skin line is continuous",
        2: "Mild: shallow but visible fold with a slight indentation",
        3: "Moderate: moderately deep fold, clearly visible at rest but not when the skin is stretched",
        4: "Severe: long and deep fold, prominent; under 2 mm visible when stretched",
        5: "Extreme: very long and deep fold; a 2–4 mm V-shaped fold stays visible when stretched",
    },
    "GAIS": {
        1: "Very much improved: optimal cosmetic result",
        2: "Much improved: marked improvement, not quite optimal",
        3: "Improved: obvious improvement, a further treatment would help",
        4: "No change: the appearance is essentially the same as at baseline",
        5: "Worse: the appearance is worse than at baseline",
    },
}

#: scales graded by comparing a follow-up photo with the subject's baseline photo (shown as a pair)
RATED_AGAINST_BASELINE = frozenset({"GAIS"})
