"""Text shared by every face: number formatting (:mod:`.format`), plain-text tables (:mod:`.table`),
and escaping what other machines say before it reaches a terminal (:mod:`.escape`)."""
