"""Text shared by every face: number formatting (:mod:`.format`) and plain-text tables (:mod:`.table`)."""
