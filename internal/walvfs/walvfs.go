// Package walvfs registers a SQLite VFS that writes each WAL commit with one
// system call instead of two per page.
//
// SQLite appends a commit to the write-ahead log as frames, each written
// with two calls: a 24-byte frame header, then the page. A commit that
// touches nine pages is eighteen pwrite calls, and where a system call is
// expensive (a sandbox such as gVisor intercepts every one) they are most of
// the cost of a small transaction. This VFS is the platform's default VFS
// with one change: writes to a WAL file are gathered in memory while they
// are contiguous, and written together when the frame that commits the
// transaction is complete, or before anything else is done with the file
// (a read, a sync, a truncate, a size query, a file control, a close).
//
// Why this keeps SQLite's guarantees: other connections find a commit
// through the wal-index header, which SQLite publishes only after walFrames
// has written the commit frame, so by then the frames are in the file. A
// crash before the write loses a transaction that had not yet committed,
// which is what a crash during the transaction does anyway. With
// synchronous=FULL the sync that follows the commit frame writes the frames
// first. The order of writes to the file is unchanged.
package walvfs

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Name is the name the VFS is registered under: pass it as the vfs
// parameter of a file: URI.
const Name = "spool-wal"

const (
	frameHeader = 24 // WAL_FRAME_HDRSIZE
	// maxPending bounds one write: the unix VFS writes at most 128 KiB - 1
	// bytes per call (it masks the length with 0x1ffff).
	maxPending = 64 << 10
)

var (
	once    sync.Once
	regErr  error
	baseVFS uintptr // the default VFS, which does the real work
	baseSz  int32   // its szOsFile; our state follows it in each file

	tablesMu sync.Mutex
	tables   = map[uintptr]uintptr{} // base io methods → wrapped
)

// state is what the VFS keeps for a WAL file, in the memory SQLite
// allocates for the file, after the base VFS's own.
type state struct {
	base   uintptr // the base VFS's io methods for this file
	buf    uintptr // pending bytes (libc memory)
	cap    int64
	off    int64 // file offset of buf[0]
	n      int64 // bytes pending
	commit int32 // the last write was the header of a commit frame
	// read is one past the file offset of the last read, 0 if none: a
	// write there rewrites what SQLite just read (the checksums of frames
	// already written, walRewriteChecksums), header only, with no page
	// after it to complete the commit frame, so it is not held back.
	read int64
}

// Register registers the VFS once per process and returns its name.
func Register() (string, error) {
	once.Do(func() { regErr = register() })
	return Name, regErr
}

func register() error {
	tls := libc.NewTLS()
	defer tls.Close()
	baseVFS = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if baseVFS == 0 {
		return fmt.Errorf("walvfs: no default vfs")
	}
	base := (*sqlite3.Tsqlite3_vfs)(ptr(baseVFS))
	baseSz = (base.FszOsFile + 7) &^ 7
	p := libc.Xmalloc(tls, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	name, err := libc.CString(Name)
	if p == 0 || err != nil {
		return fmt.Errorf("walvfs: out of memory")
	}
	v := (*sqlite3.Tsqlite3_vfs)(ptr(p))
	*v = *base
	v.FpNext = 0
	v.FzName = name
	v.FszOsFile = baseSz + int32(unsafe.Sizeof(state{}))
	setFn(&v.FxOpen, xOpen)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, p, 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("walvfs: register: sqlite error %d", rc)
	}
	return nil
}

func xOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	base := (*sqlite3.Tsqlite3_vfs)(ptr(baseVFS))
	rc := call6open(base.FxOpen)(tls, baseVFS, zName, pFile, flags, pOutFlags)
	f := (*sqlite3.Tsqlite3_file)(ptr(pFile))
	if rc != sqlite3.SQLITE_OK || flags&sqlite3.SQLITE_OPEN_WAL == 0 || f.FpMethods == 0 {
		return rc
	}
	w := wrap(tls, f.FpMethods)
	if w == 0 {
		callClose((*sqlite3.Tsqlite3_io_methods)(ptr(f.FpMethods)).FxClose)(tls, pFile)
		f.FpMethods = 0
		return sqlite3.SQLITE_NOMEM
	}
	*fileState(pFile) = state{base: f.FpMethods}
	f.FpMethods = w
	return rc
}

// wrap returns the io methods that buffer a WAL file's writes over base.
// The table is in C memory, as SQLite's own are (the race detector's
// pointer checks refuse a Go heap pointer that SQLite kept as an integer),
// and lives as long as the process: open files point at it.
func wrap(tls *libc.TLS, base uintptr) uintptr {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	p, ok := tables[base]
	if !ok {
		if p = libc.Xmalloc(tls, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{}))); p == 0 {
			return 0
		}
		t := (*sqlite3.Tsqlite3_io_methods)(ptr(p))
		*t = *(*sqlite3.Tsqlite3_io_methods)(ptr(base))
		setFn(&t.FxClose, xClose)
		setFn(&t.FxRead, xRead)
		setFn(&t.FxWrite, xWrite)
		setFn(&t.FxTruncate, xTruncate)
		setFn(&t.FxSync, xSync)
		setFn(&t.FxFileSize, xFileSize)
		setFn(&t.FxFileControl, xFileControl)
		tables[base] = p
	}
	return p
}

func fileState(pFile uintptr) *state { return (*state)(ptr(pFile + uintptr(baseSz))) }

func methods(st *state) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(ptr(st.base))
}

// flush writes the pending bytes with the base VFS.
func flush(tls *libc.TLS, pFile uintptr) int32 {
	st := fileState(pFile)
	if st.n == 0 {
		return sqlite3.SQLITE_OK
	}
	rc := callWrite(methods(st).FxWrite)(tls, pFile, st.buf, int32(st.n), st.off)
	st.n, st.commit = 0, 0
	return rc
}

func xWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	st := fileState(pFile)
	amt := int64(iAmt)
	if st.read != 0 && iOfst == st.read-1 {
		st.read = 0
		if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
			return rc
		}
		return callWrite(methods(st).FxWrite)(tls, pFile, zBuf, iAmt, iOfst)
	}
	commit := st.commit != 0
	if st.n > 0 && (iOfst != st.off+st.n || st.n+amt > maxPending) {
		if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if amt > maxPending {
		st.commit = 0
		return callWrite(methods(st).FxWrite)(tls, pFile, zBuf, iAmt, iOfst)
	}
	if st.n+amt > st.cap {
		c := max(st.cap*2, 16<<10, st.n+amt)
		p := libc.Xrealloc(tls, st.buf, uint64(c))
		if p == 0 {
			return sqlite3.SQLITE_IOERR_NOMEM
		}
		st.buf, st.cap = p, c
	}
	if st.n == 0 {
		st.off = iOfst
	}
	copy(unsafe.Slice((*byte)(ptr(st.buf+uintptr(st.n))), amt), unsafe.Slice((*byte)(ptr(zBuf)), amt))
	st.n += amt
	switch {
	case commit:
		// The page of the commit frame: the transaction is whole.
		return flush(tls, pFile)
	case amt == frameHeader:
		// Bytes 4–7 of a frame header are the database size after a
		// commit, zero in every other frame.
		hdr := unsafe.Slice((*byte)(ptr(zBuf)), frameHeader)
		if binary.BigEndian.Uint32(hdr[4:8]) != 0 {
			st.commit = 1
		}
	}
	return sqlite3.SQLITE_OK
}

func xClose(tls *libc.TLS, pFile uintptr) int32 {
	st := fileState(pFile)
	rc := flush(tls, pFile)
	if st.buf != 0 {
		libc.Xfree(tls, st.buf)
		st.buf, st.cap = 0, 0
	}
	if rc2 := callClose(methods(st).FxClose)(tls, pFile); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	return rc
}

func xRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fileState(pFile).read = iOfst + 1
	return callWrite(methods(fileState(pFile)).FxRead)(tls, pFile, zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int64) int32)(fnPtr(methods(fileState(pFile)).FxTruncate)))(tls, pFile, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32) int32)(fnPtr(methods(fileState(pFile)).FxSync)))(tls, pFile, flags)
}

func xFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(fnPtr(methods(fileState(pFile)).FxFileSize)))(tls, pFile, pSize)
}

func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(fnPtr(methods(fileState(pFile)).FxFileControl)))(tls, pFile, op, pArg)
}

// The transpiled SQLite stores a C function pointer as a uintptr holding a
// Go func value; these convert between the two. Only top-level functions
// are stored, so the garbage collector never needs to see them.

func setFn[F any](field *uintptr, fn F) { *(*F)(unsafe.Pointer(field)) = fn }

func fnPtr(fn uintptr) unsafe.Pointer { return unsafe.Pointer(&fn) }

func callWrite(fn uintptr) func(*libc.TLS, uintptr, uintptr, int32, int64) int32 {
	return *(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(fnPtr(fn))
}

func callClose(fn uintptr) func(*libc.TLS, uintptr) int32 {
	return *(*func(*libc.TLS, uintptr) int32)(fnPtr(fn))
}

func call6open(fn uintptr) func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32 {
	return *(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(fnPtr(fn))
}

// ptr turns an address in C memory into a pointer. The memory is not Go's,
// so the conversion is safe; going through a variable keeps vet's
// unsafeptr check, meant for Go memory, quiet.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }
