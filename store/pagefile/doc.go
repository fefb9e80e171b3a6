// Package pagefile is the bottom layer of the OOR storage engine: a file of
// fixed-size 4 KiB pages addressed by page id (offset = id × PageSize), each
// carrying a self-describing header with a CRC32 checksum.
//
// # Guarantees
//
//   - Every ReadPage verifies magic, page id and the CRC32-C checksum before
//     returning; a page that fails any check is reported as ErrChecksum or
//     ErrBadPage and its bytes must not be used. A flipped bit is an error,
//     never data.
//   - WritePage seals the page (magic, id, checksum) in place and writes it at
//     its offset; it does not fsync. Durability is Sync's job (and, later, the
//     WAL's).
//   - Allocate hands out ids past the end of the file; the page exists on disk
//     once it is first written.
//
// # Types
//
// File is the small file interface the pager writes through (*os.File
// satisfies it, as do the store/vfs files used for fault injection). Pager
// owns one File. The header helpers (Init, Type, LSN, SetLSN, Verify) work on
// a page buffer and are what the layers above use to format pages.
//
// # Caveats
//
// There is no free list: pages are never returned to the file. A crash in the
// middle of a multi-page write leaves some pages new and some old; each page
// is individually checksummed, so torn pages are detected, but cross-page
// consistency needs the WAL.
package pagefile
