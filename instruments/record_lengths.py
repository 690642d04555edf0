"""Record lengths the oscilloscopes offer, from their manuals (shared by the drivers and the twin).

* Rigol DS1000Z (User's Guide, "Memory Depth"): depth = sample rate × timebase × 12 divisions, chosen from a
  list that depends on how many channels are on; the largest entry of each list needs the 24 Mpts option.
* Keysight InfiniiVision 1000X/2000X (Programmer's Guide, ``:WAVeform:POINts``): the lengths accepted in RAW
  points mode.
"""

from __future__ import annotations

__all__ = ["KEYSIGHT_RAW_POINTS", "RIGOL_MEMORY_DEPTHS"]

#: DS1000Z memory depths per number of channels on
RIGOL_MEMORY_DEPTHS: dict[int, tuple[int, ...]] = {
    1: (12_000, 120_000, 1_200_000, 12_000_000, 24_000_000),
    2: (6_000, 60_000, 600_000, 6_000_000, 12_000_000),
    3: (3_000, 30_000, 300_000, 3_000_000, 6_000_000),
    4: (3_000, 30_000, 300_000, 3_000_000, 6_000_000),
}

#: InfiniiVision ``:WAV:POIN`` lengths in RAW mode
KEYSIGHT_RAW_POINTS: tuple[int, ...] = (100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
                                        200_000, 500_000, 1_000_000)
