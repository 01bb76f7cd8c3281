"""Filesystems and volumes read in-process from any random-access byte stream, read-only.

One format per module: volumes.py finds partitions (GPT/MBR), LVM logical volumes (lvm.py) and
the filesystem on each; filesystem.py gives one FileSystem over ext4 (ext4.py), xfs (xfs.py) and
btrfs (through dissect). Nothing here knows of repositories or snapshots: engine/files/ hands it
a snapshot disk as a stream.
"""
