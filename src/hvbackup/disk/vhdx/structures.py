"""VHDX on-disk structures ([MS-VHDX] sections 2.2-2.6): parse and build, CRC-32C checked.

Parsers take bytes already read from the file and raise VhdxError naming the structure that is
wrong; builders return the exact bytes to write. Nothing here touches a file.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

import crc32c

from hvbackup.disk.errors import VhdxError

KiB = 1024
MiB = 1024 * KiB

FILE_IDENTIFIER_SIGNATURE = b"vhdxfile"
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
REGION_TABLE_OFFSETS = (192 * KiB, 256 * KiB)
HEADER_SIZE = 4 * KiB
REGION_TABLE_SIZE = 64 * KiB
METADATA_TABLE_SIZE = 64 * KiB
MAX_TABLE_ENTRIES = 2047
MAX_VIRTUAL_SIZE = 64 * 1024**4
MIN_BLOCK_SIZE = 1 * MiB
MAX_BLOCK_SIZE = 256 * MiB
SECTOR_BITMAP_BLOCK_SIZE = 1 * MiB
SECTORS_PER_CHUNK = 1 << 23  # sectors described by one sector bitmap block

BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")

FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83_DATA = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_PARENT_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
KNOWN_METADATA = {
    FILE_PARAMETERS,
    VIRTUAL_DISK_SIZE,
    PAGE83_DATA,
    LOGICAL_SECTOR_SIZE,
    PHYSICAL_SECTOR_SIZE,
    PARENT_LOCATOR,
}

# Payload block states (BAT entry bits 0-2). 5 is what qemu (spec draft 1.0) calls UNMAPPED.
PAYLOAD_NOT_PRESENT = 0
PAYLOAD_UNDEFINED = 1
PAYLOAD_ZERO = 2
PAYLOAD_UNMAPPED = 3
PAYLOAD_UNMAPPED_V1 = 5
PAYLOAD_FULLY_PRESENT = 6
PAYLOAD_PARTIALLY_PRESENT = 7
ZERO_STATES = frozenset({PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED, PAYLOAD_UNMAPPED_V1})
SB_NOT_PRESENT = 0
SB_PRESENT = 6

METADATA_IS_USER = 1
METADATA_IS_VIRTUAL_DISK = 2
METADATA_IS_REQUIRED = 4


def crc(data: bytes | bytearray | memoryview) -> int:
    return crc32c.crc32c(data)


def checksum_ok(block: bytes, checksum_offset: int = 4) -> bool:
    """CRC-32C over `block` with its 4-byte checksum field taken as zero."""
    stored = struct.unpack_from("<I", block, checksum_offset)[0]
    zeroed = block[:checksum_offset] + b"\0\0\0\0" + block[checksum_offset + 4 :]
    return crc(zeroed) == stored


def with_checksum(block: bytearray, checksum_offset: int = 4) -> bytes:
    struct.pack_into("<I", block, checksum_offset, 0)
    struct.pack_into("<I", block, checksum_offset, crc(block))
    return bytes(block)


def guid_from(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes_le=bytes(raw))


def guid_text(value: uuid.UUID) -> str:
    """Braced lower-case form: libvhdi 20260901 reads no other (it ignores an upper-case parent_linkage)."""
    return "{" + str(value) + "}"


def parse_guid_text(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip().strip("{}"))
    except ValueError:
        return None


# -- file identifier --------------------------------------------------------------------------
def build_file_identifier(creator: str) -> bytes:
    block = bytearray(64 * KiB)
    block[0:8] = FILE_IDENTIFIER_SIGNATURE
    encoded = creator.encode("utf-16-le")[:510]
    block[8 : 8 + len(encoded)] = encoded
    return bytes(block)


# -- header -------------------------------------------------------------------------------------
_HEADER = struct.Struct("<4sIQ16s16s16sHHIQ")


@dataclass
class Header:
    sequence_number: int
    file_write_guid: uuid.UUID
    data_write_guid: uuid.UUID
    log_guid: uuid.UUID
    log_length: int
    log_offset: int
    log_version: int = 0
    version: int = 1

    @classmethod
    def parse(cls, block: bytes, where: str) -> Header:
        """Parse a 4 KiB header; raise VhdxError if its signature, checksum or fields are wrong."""
        sig, _, seq, fwg, dwg, lg, log_version, version, log_length, log_offset = _HEADER.unpack_from(block)
        if sig != b"head":
            raise VhdxError(f"{where}: bad signature {sig!r}")
        if not checksum_ok(block):
            raise VhdxError(f"{where}: CRC-32C mismatch")
        if version != 1:
            raise VhdxError(f"{where}: unsupported version {version}")
        if log_version != 0:
            raise VhdxError(f"{where}: unsupported log version {log_version}")
        if log_offset % MiB or log_length % MiB:
            raise VhdxError(f"{where}: log offset {log_offset} / length {log_length} not multiples of 1 MiB")
        return cls(seq, guid_from(fwg), guid_from(dwg), guid_from(lg), log_length, log_offset, log_version, version)

    def build(self) -> bytes:
        block = bytearray(HEADER_SIZE)
        _HEADER.pack_into(
            block,
            0,
            b"head",
            0,
            self.sequence_number,
            self.file_write_guid.bytes_le,
            self.data_write_guid.bytes_le,
            self.log_guid.bytes_le,
            self.log_version,
            self.version,
            self.log_length,
            self.log_offset,
        )
        return with_checksum(block)


# -- region table ------------------------------------------------------------------------------
_REGION_HEADER = struct.Struct("<4sIII")
_REGION_ENTRY = struct.Struct("<16sQII")


@dataclass(frozen=True)
class Region:
    guid: uuid.UUID
    file_offset: int
    length: int
    required: bool


def parse_region_table(block: bytes, where: str) -> dict[uuid.UUID, Region]:
    sig, _, count, _ = _REGION_HEADER.unpack_from(block)
    if sig != b"regi":
        raise VhdxError(f"{where}: bad signature {sig!r}")
    if not checksum_ok(block):
        raise VhdxError(f"{where}: CRC-32C mismatch")
    if count > MAX_TABLE_ENTRIES:
        raise VhdxError(f"{where}: {count} entries (at most {MAX_TABLE_ENTRIES} allowed)")
    regions: dict[uuid.UUID, Region] = {}
    for i in range(count):
        raw, offset, length, flags = _REGION_ENTRY.unpack_from(block, 16 + i * 32)
        region = Region(guid_from(raw), offset, length, bool(flags & 1))
        if region.guid in regions:
            raise VhdxError(f"{where}: region {region.guid} listed twice")
        if offset % MiB or length % MiB or offset < MiB:
            raise VhdxError(f"{where}: region {region.guid} at {offset} (+{length}) not 1 MiB aligned after the header")
        regions[region.guid] = region
    return regions


def build_region_table(regions: list[Region]) -> bytes:
    block = bytearray(REGION_TABLE_SIZE)
    _REGION_HEADER.pack_into(block, 0, b"regi", 0, len(regions), 0)
    for i, region in enumerate(regions):
        _REGION_ENTRY.pack_into(
            block, 16 + i * 32, region.guid.bytes_le, region.file_offset, region.length, int(region.required)
        )
    return with_checksum(block)


# -- metadata ------------------------------------------------------------------------------------
_METADATA_HEADER = struct.Struct("<8sHH20x")
_METADATA_ENTRY = struct.Struct("<16sIII4x")


@dataclass(frozen=True)
class MetadataEntry:
    item: uuid.UUID
    offset: int
    length: int
    flags: int


def parse_metadata_table(block: bytes, region_length: int, where: str) -> dict[uuid.UUID, MetadataEntry]:
    sig, _, count = _METADATA_HEADER.unpack_from(block)
    if sig != b"metadata":
        raise VhdxError(f"{where}: bad signature {sig!r}")
    if count > MAX_TABLE_ENTRIES:
        raise VhdxError(f"{where}: {count} entries (at most {MAX_TABLE_ENTRIES} allowed)")
    entries: dict[uuid.UUID, MetadataEntry] = {}
    for i in range(count):
        raw, offset, length, flags = _METADATA_ENTRY.unpack_from(block, 32 + i * 32)
        entry = MetadataEntry(guid_from(raw), offset, length, flags)
        if entry.item in entries:
            raise VhdxError(f"{where}: item {entry.item} listed twice")
        if length and (offset < METADATA_TABLE_SIZE or offset + length > region_length):
            raise VhdxError(f"{where}: item {entry.item} at {offset} (+{length}) lies outside the metadata region")
        if entry.item not in KNOWN_METADATA and flags & METADATA_IS_REQUIRED:
            raise VhdxError(f"{where}: unknown required item {entry.item}; this VHDX needs a newer reader")
        entries[entry.item] = entry
    return entries


@dataclass
class FileParameters:
    block_size: int
    leave_block_allocated: bool
    has_parent: bool

    @classmethod
    def parse(cls, raw: bytes) -> FileParameters:
        block_size, flags = struct.unpack_from("<II", raw)
        if block_size < MIN_BLOCK_SIZE or block_size > MAX_BLOCK_SIZE or block_size & (block_size - 1):
            raise VhdxError(
                f"metadata file parameters: block size {block_size} is not a power of two from 1 MiB to 256 MiB"
            )
        return cls(block_size, bool(flags & 1), bool(flags & 2))

    def build(self) -> bytes:
        return struct.pack("<II", self.block_size, int(self.leave_block_allocated) | int(self.has_parent) << 1)


@dataclass
class ParentLocator:
    entries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: bytes) -> ParentLocator:
        if len(raw) < 20:
            raise VhdxError(f"parent locator: {len(raw)} bytes is too short")
        locator_type = guid_from(raw[0:16])
        if locator_type != VHDX_PARENT_LOCATOR_TYPE:
            raise VhdxError(f"parent locator: unknown type {locator_type}")
        (count,) = struct.unpack_from("<H", raw, 18)
        if 20 + count * 12 > len(raw):
            raise VhdxError(f"parent locator: {count} key/value entries do not fit in {len(raw)} bytes")
        entries: dict[str, str] = {}
        for i in range(count):
            key_offset, value_offset, key_length, value_length = struct.unpack_from("<IIHH", raw, 20 + i * 12)
            key = _locator_text(raw, key_offset, key_length, "key")
            entries[key] = _locator_text(raw, value_offset, value_length, f"value of {key!r}")
        return cls(entries)

    def build(self) -> bytes:
        table = bytearray(VHDX_PARENT_LOCATOR_TYPE.bytes_le + struct.pack("<HH", 0, len(self.entries)))
        strings = bytearray()
        base = 20 + 12 * len(self.entries)
        for key, value in self.entries.items():
            k, v = key.encode("utf-16-le"), value.encode("utf-16-le")
            table += struct.pack("<IIHH", base + len(strings), base + len(strings) + len(k), len(k), len(v))
            strings += k + v
        return bytes(table + strings)


def _locator_text(raw: bytes, offset: int, length: int, what: str) -> str:
    if length % 2 or offset + length > len(raw) or offset < 20:
        raise VhdxError(f"parent locator: {what} at {offset} (+{length}) lies outside the locator")
    try:
        return raw[offset : offset + length].decode("utf-16-le")
    except UnicodeDecodeError:
        raise VhdxError(f"parent locator: {what} is not valid UTF-16") from None


def build_metadata_region(items: list[tuple[uuid.UUID, int, bytes]], length: int) -> bytes:
    """A metadata region of `length` bytes: the table, then the items packed from 64 KiB on."""
    region = bytearray(length)
    _METADATA_HEADER.pack_into(region, 0, b"metadata", 0, len(items))
    offset = METADATA_TABLE_SIZE
    for i, (item, flags, data) in enumerate(items):
        _METADATA_ENTRY.pack_into(region, 32 + i * 32, item.bytes_le, offset, len(data), flags)
        region[offset : offset + len(data)] = data
        offset += (len(data) + 7) // 8 * 8
    return bytes(region)


# -- block allocation table --------------------------------------------------------------------
def chunk_ratio(block_size: int, logical_sector_size: int) -> int:
    return SECTORS_PER_CHUNK * logical_sector_size // block_size


def bat_entry_count(payload_blocks: int, ratio: int, has_parent: bool) -> int:
    if has_parent:
        return -(-payload_blocks // ratio) * (ratio + 1)
    return payload_blocks + (payload_blocks - 1) // ratio


def bat_entry(state: int, file_offset: int) -> int:
    return state | (file_offset // MiB) << 20
