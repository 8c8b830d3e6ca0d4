"""Why can (or can't) A reach B: the path walk over a host's live state, probes, and the answer."""
