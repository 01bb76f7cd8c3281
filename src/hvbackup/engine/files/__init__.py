"""File-level restore: read files straight out of a snapshot, in-process and read-only.

view.py gives random access to a snapshot disk, volumes.py finds partitions, LVM volumes and
filesystems on it, fs.py reads ext4/xfs/btrfs through dissect, extract.py writes files out.
"""
