"""VHDX and AVHDX ([MS-VHDX]): reader, writer, log replay and merge."""
