"""CTKT: cross-task knowledge transfer for depth super-resolution (DSRNet = D-DBPN so far)."""
