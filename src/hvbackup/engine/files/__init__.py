"""File-level restore: read files straight out of a snapshot, in-process and read-only.

view.py gives random access to a snapshot disk, opening.py opens the filesystem on it through
hvbackup/fs/ (partitions, LVM, ext4/xfs/btrfs), extract.py writes files out, mount.py serves
the disks as raw images over FUSE.
"""
