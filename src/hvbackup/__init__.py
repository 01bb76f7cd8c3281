"""hvbackup: backup and restore for Linux virtual machines on Microsoft Hyper-V."""

__version__ = "0.1.0"
