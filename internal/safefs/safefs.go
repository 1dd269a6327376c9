// Package safefs is rdctl's one way to touch files that matter: atomic
// writes, opens that never follow a symlink at the final path component,
// owner and mode fixes made on the open file descriptor, and the lock that
// every mutating command holds.
//
// # Invariants
//
//   - A file is replaced only by rename(2) of a fully written, fsynced
//     temporary file in the same directory, followed by an fsync of the
//     directory. A crash leaves the old file or the new one, never a mix.
//   - The mode and owner of the new file are set on the temporary file before
//     the rename, so there is no instant where a secret is world-readable.
//   - Only regular files are replaced. A symlink, directory, device or FIFO in
//     the way is an error ([ErrNotRegular], [ErrSymlink]), never followed.
//   - Temporary files are named ".<name>.rdctl-tmp-<random>" and are removed
//     when a write fails; [Dir.RemoveStaleTemps] removes those a crash left.
package safefs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink reports a symlink where rdctl wants a regular file or directory.
var ErrSymlink = errors.New("is a symbolic link")

// ErrNotRegular reports something other than a regular file (a directory,
// device, socket or FIFO) where rdctl wants a regular file.
var ErrNotRegular = errors.New("is not a regular file")

// ErrHardLink reports a regular file with more than one hard link where
// rdctl reads, repairs or shreds a file in a directory another user can
// write. Such a link may name a file outside that directory (with
// fs.protected_hardlinks=0 anyone can link to a file they cannot read), so
// chowning or zeroing it would act on that other file.
var ErrHardLink = errors.New("has more than one hard link")

// ErrTooLarge reports a file larger than rdctl reads or shreds there. A
// planted sparse file may claim a terabyte; rdctl never sizes a buffer by
// what a file claims.
var ErrTooLarge = errors.New("is larger than rdctl handles there")

// TempMarker is part of every temporary file name safefs creates.
const TempMarker = ".rdctl-tmp-"

// KeepOwner as a UID or GID leaves that part of the owner as it is.
const KeepOwner = -1

// FileOptions says how a file is to be written.
type FileOptions struct {
	// Mode is the permission bits of the file (e.g. 0600). Zero means 0600.
	Mode fs.FileMode
	// UID and GID are the owner to set; KeepOwner (-1) leaves them to the
	// process's own (root when installing). The zero value means root.
	UID, GID int
}

// CallerOwned is how rdctl writes system files (units, the record, the
// compose file, binaries): owned by whoever runs rdctl. That is root on a
// live host, and the caller in an image tree built without root, where
// systemd-sysusers and StateDirectory= settle ownership at boot. A new file
// is always a fresh temporary renamed into place, so it cannot inherit an
// owner from what it replaces.
func CallerOwned(mode fs.FileMode) FileOptions {
	return FileOptions{Mode: mode, UID: KeepOwner, GID: KeepOwner}
}

func (o FileOptions) mode() fs.FileMode {
	if o.Mode == 0 {
		return 0o600
	}
	return o.Mode.Perm()
}

// PathError wraps a failure with the path it concerns.
type PathError struct {
	Op   string
	Path string
	Err  error
}

func (e *PathError) Error() string { return fmt.Sprintf("%s %q: %v", e.Op, e.Path, e.Err) }
func (e *PathError) Unwrap() error { return e.Err }

// Dir is an open directory. Names given to its methods are single path
// components; a symlink at that component is never followed. A Dir must be
// closed. Its methods are not safe for concurrent use.
type Dir struct {
	f    *os.File
	path string
}

// OpenDir opens an existing directory. It refuses a path whose last
// component is a symlink.
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &PathError{Op: "open directory", Path: path, Err: classify(path, err)}
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// MkdirAll creates path and any missing parents with mode perm (parents get
// 0755), then opens it. An existing directory keeps its mode.
func MkdirAll(path string, perm fs.FileMode) (*Dir, error) {
	// "." and "/" (the directory of a bare file name, of a file at the root)
	// always exist and name no entry in a parent that could be created.
	if b := filepath.Base(path); b == "." || b == ".." || b == string(filepath.Separator) {
		return OpenDir(path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, &PathError{Op: "create directory", Path: filepath.Dir(path), Err: err}
	}
	parent, err := OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	d, _, err := parent.MkdirSub(filepath.Base(path), perm)
	return d, err
}

// Path is the path the directory was opened by.
func (d *Dir) Path() string { return d.path }

// Join returns the path of name inside d, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

func (d *Dir) fd() int { return int(d.f.Fd()) }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
		return fmt.Errorf("invalid file name %q", name)
	}
	return nil
}

// classify turns ELOOP from an O_NOFOLLOW open into ErrSymlink.
func classify(path string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return ErrSymlink
	}
	// What O_NONBLOCK gives for a FIFO with no reader opened for writing:
	// it is not a regular file.
	if errors.Is(err, unix.ENXIO) {
		return ErrNotRegular
	}
	if errors.Is(err, unix.ENOTDIR) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return ErrSymlink
		}
	}
	return err
}

// Info is what Lstat tells about a directory entry.
type Info struct {
	Mode fs.FileMode // type and permission bits, as in os.FileMode
	UID  int
	GID  int
	Size int64
	// Nlink is the number of hard links.
	Nlink uint64
}

// IsRegular reports whether the entry is a regular file.
func (i Info) IsRegular() bool { return i.Mode.IsRegular() }

func infoFromStat(st *unix.Stat_t) Info {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFREG:
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	default:
		m |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return Info{Mode: m, UID: int(st.Uid), GID: int(st.Gid), Size: st.Size, Nlink: uint64(st.Nlink)}
}

// Lstat describes name without following a symlink. A missing entry gives
// an error matching fs.ErrNotExist.
func (d *Dir) Lstat(name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Info{}, &PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	return infoFromStat(&st), nil
}

// Exists reports whether name exists (as anything, a dangling symlink too).
func (d *Dir) Exists(name string) (bool, error) {
	_, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// openRegular opens name read-only without following a symlink and checks
// that it is a regular file. The O_NONBLOCK keeps a planted FIFO from
// blocking the open.
func (d *Dir) openRegular(name string, flags int) (*os.File, Info, error) {
	if err := checkName(name); err != nil {
		return nil, Info{}, err
	}
	fd, err := unix.Openat(d.fd(), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, Info{}, &PathError{Op: "open", Path: d.Join(name), Err: classify(d.Join(name), err)}
	}
	f := os.NewFile(uintptr(fd), d.Join(name))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, Info{}, &PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	info := infoFromStat(&st)
	if !info.IsRegular() {
		f.Close()
		return nil, Info{}, &PathError{Op: "open", Path: d.Join(name), Err: ErrNotRegular}
	}
	return f, info, nil
}

// ReadFile reads a regular file of at most max bytes.
func (d *Dir) ReadFile(name string, max int64) ([]byte, Info, error) {
	f, info, err := d.openRegular(name, unix.O_RDONLY)
	if err != nil {
		return nil, Info{}, err
	}
	defer f.Close()
	data, err := d.readAtMost(f, name, max)
	if err != nil {
		return nil, Info{}, err
	}
	return data, info, nil
}

// readAtMost reads f, opened from name, refusing more than max bytes: a
// check of the size before the read can be outrun by a file that grows.
func (d *Dir) readAtMost(f *os.File, name string, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &PathError{Op: "read", Path: d.Join(name), Err: err}
	}
	if int64(len(data)) > max {
		return nil, &PathError{Op: "read", Path: d.Join(name), Err: fmt.Errorf("%w (%d bytes)", ErrTooLarge, max)}
	}
	return data, nil
}

// ReadUntrusted reads name from a directory another user can write (hbbs's
// working directory, which the service user owns): like [Dir.ReadFile] it
// opens without following a symlink and without blocking on a FIFO, checks
// the descriptor (not the name) is a regular file and reads at most max
// bytes, and it also refuses a file with more than one hard link
// ([ErrHardLink]) or larger than max by its size ([ErrTooLarge]), before
// reading anything.
func (d *Dir) ReadUntrusted(name string, max int64) ([]byte, Info, error) {
	f, info, err := d.openSingle(name, unix.O_RDONLY, max)
	if err != nil {
		return nil, Info{}, err
	}
	defer f.Close()
	data, err := d.readAtMost(f, name, max) // it may have grown after the fstat
	if err != nil {
		return nil, Info{}, err
	}
	return data, info, nil
}

// openSingle is openRegular that also refuses more than one hard link and,
// with max >= 0, a size above max.
func (d *Dir) openSingle(name string, flags int, max int64) (*os.File, Info, error) {
	f, info, err := d.openRegular(name, flags)
	if err != nil {
		return nil, Info{}, err
	}
	switch {
	case info.Nlink != 1:
		err = &PathError{Op: "open", Path: d.Join(name), Err: fmt.Errorf("%w (%d)", ErrHardLink, info.Nlink)}
	case max >= 0 && info.Size > max:
		err = &PathError{Op: "open", Path: d.Join(name), Err: fmt.Errorf("%w (%d bytes, at most %d)", ErrTooLarge, info.Size, max)}
	}
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return f, info, nil
}

// shredChunk is how much of a file [Dir.Shred] overwrites per write.
const shredChunk = 4096

// Shred overwrites the regular file name with zeros, fsyncs it and unlinks
// it. The overwrite happens on a descriptor that was checked to be a
// regular file with one link and at most max bytes: a FIFO, a hard link to
// a file elsewhere or a huge (sparse) file is refused with [ErrNotRegular],
// [ErrHardLink] or [ErrTooLarge] and left untouched, and the zeros are
// written in bounded chunks. A missing file is not an error. On SSDs and
// copy-on-write filesystems the overwrite may land in new blocks: it is a
// best effort, not a guarantee.
func (d *Dir) Shred(name string, max int64) error {
	f, info, err := d.openSingle(name, unix.O_WRONLY, max)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	zeros := make([]byte, shredChunk)
	var werr error
	for off := int64(0); off < info.Size && werr == nil; off += shredChunk {
		n := min(info.Size-off, shredChunk)
		_, werr = f.WriteAt(zeros[:n], off)
	}
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return &PathError{Op: "shred", Path: d.Join(name), Err: err}
	}
	return d.Remove(name)
}

// Sub opens the subdirectory name, refusing a symlink.
func (d *Dir) Sub(name string) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &PathError{Op: "open directory", Path: d.Join(name), Err: classify(d.Join(name), err)}
	}
	return &Dir{f: os.NewFile(uintptr(fd), d.Join(name)), path: d.Join(name)}, nil
}

// MkdirSub creates the subdirectory name with mode perm unless it exists,
// and opens it. created reports whether it was made now.
func (d *Dir) MkdirSub(name string, perm fs.FileMode) (sub *Dir, created bool, err error) {
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	err = unix.Mkdirat(d.fd(), name, uint32(perm.Perm()))
	switch {
	case err == nil:
		created = true
	case errors.Is(err, unix.EEXIST):
	default:
		return nil, false, &PathError{Op: "create directory", Path: d.Join(name), Err: err}
	}
	sub, err = d.Sub(name)
	if err != nil {
		return nil, false, err
	}
	if created {
		// mkdir applies the umask; set the mode we were asked for.
		if err := unix.Fchmod(sub.fd(), uint32(perm.Perm())); err != nil {
			sub.Close()
			return nil, false, &PathError{Op: "chmod", Path: sub.path, Err: err}
		}
		if err := d.Sync(); err != nil {
			sub.Close()
			return nil, false, err
		}
	}
	return sub, created, nil
}

// Sync fsyncs the directory, making renames and creations in it durable.
// Filesystems that cannot sync a directory (EINVAL, ENOTSUP) are tolerated.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd()); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTSUP) {
		return &PathError{Op: "sync directory", Path: d.path, Err: err}
	}
	return nil
}

// Chmod sets the directory's own mode, on its descriptor.
func (d *Dir) Chmod(perm fs.FileMode) error {
	if err := unix.Fchmod(d.fd(), uint32(perm.Perm())); err != nil {
		return &PathError{Op: "chmod", Path: d.path, Err: err}
	}
	return nil
}

// Chown sets the directory's own owner, on its descriptor.
func (d *Dir) Chown(uid, gid int) error {
	if err := unix.Fchown(d.fd(), uid, gid); err != nil {
		return &PathError{Op: "chown", Path: d.path, Err: err}
	}
	return nil
}

// Stat describes the directory itself.
func (d *Dir) Stat() (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd(), &st); err != nil {
		return Info{}, &PathError{Op: "stat", Path: d.path, Err: err}
	}
	return infoFromStat(&st), nil
}

// ensureReplaceable returns the existing entry's Info (ok=true), nothing if
// it is missing, or an error if it is not a regular file.
func (d *Dir) ensureReplaceable(name string) (Info, bool, error) {
	info, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, err
	}
	if info.Mode&fs.ModeSymlink != 0 {
		return Info{}, false, &PathError{Op: "replace", Path: d.Join(name), Err: ErrSymlink}
	}
	if !info.IsRegular() {
		return Info{}, false, &PathError{Op: "replace", Path: d.Join(name), Err: ErrNotRegular}
	}
	return info, true, nil
}

func ownerMatches(info Info, o FileOptions) bool {
	return (o.UID == KeepOwner || info.UID == o.UID) && (o.GID == KeepOwner || info.GID == o.GID)
}

// Unchanged reports whether name already holds exactly data with the mode
// and owner o asks for. A missing file is not unchanged.
func (d *Dir) Unchanged(name string, data []byte, o FileOptions) (bool, error) {
	info, ok, err := d.ensureReplaceable(name)
	if err != nil || !ok {
		return false, err
	}
	if info.Mode.Perm() != o.mode() || !ownerMatches(info, o) || info.Size != int64(len(data)) {
		return false, nil
	}
	cur, _, err := d.ReadFile(name, int64(len(data)))
	if err != nil {
		return false, err
	}
	return bytes.Equal(cur, data), nil
}

// WriteFile atomically replaces name with data, mode and owner as o says,
// unless it already holds exactly that; changed reports whether it wrote.
func (d *Dir) WriteFile(name string, data []byte, o FileOptions) (changed bool, err error) {
	same, err := d.Unchanged(name, data, o)
	if err != nil || same {
		return false, err
	}
	tmp, err := d.WriteTemp(name, data, o)
	if err != nil {
		return false, err
	}
	if err := d.Rename(tmp, name); err != nil {
		d.Remove(tmp)
		return false, err
	}
	return true, d.Sync()
}

// WriteTemp writes data to a new temporary file next to name, with mode and
// owner already final, fsynced, and returns its name. The caller renames it
// into place ([Dir.Rename]) or removes it.
func (d *Dir) WriteTemp(name string, data []byte, o FileOptions) (tmp string, err error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	tmp = "." + name + TempMarker + hex.EncodeToString(rnd[:])
	if err := d.createExclusive(tmp, data, o); err != nil {
		return "", err
	}
	return tmp, nil
}

// CreateExclusive creates name, which must not exist, holding data with the
// mode and owner o asks for, and fsyncs it and the directory. It never
// overwrites anything, which is what backups need.
func (d *Dir) CreateExclusive(name string, data []byte, o FileOptions) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := d.createExclusive(name, data, o); err != nil {
		return err
	}
	return d.Sync()
}

func (d *Dir) createExclusive(name string, data []byte, o FileOptions) (err error) {
	// Created 0600 so that nobody else can open it before the final mode is set.
	fd, err := unix.Openat(d.fd(), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &PathError{Op: "create", Path: d.Join(name), Err: classify(d.Join(name), err)}
	}
	f := os.NewFile(uintptr(fd), d.Join(name))
	defer func() {
		if err != nil {
			f.Close()
			unix.Unlinkat(d.fd(), name, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return &PathError{Op: "write", Path: d.Join(name), Err: err}
	}
	if o.UID != KeepOwner || o.GID != KeepOwner {
		if err := unix.Fchown(fd, o.UID, o.GID); err != nil {
			return &PathError{Op: "chown", Path: d.Join(name), Err: err}
		}
	}
	// After the chown: chown clears set-id bits, and the mode must be exact.
	if err := unix.Fchmod(fd, uint32(o.mode())); err != nil {
		return &PathError{Op: "chmod", Path: d.Join(name), Err: err}
	}
	if err := f.Sync(); err != nil {
		return &PathError{Op: "sync", Path: d.Join(name), Err: err}
	}
	if err := f.Close(); err != nil {
		return &PathError{Op: "close", Path: d.Join(name), Err: err}
	}
	return nil
}

// Rename renames from to to inside d. It refuses to replace anything but a
// regular file. It does not sync the directory: call [Dir.Sync].
func (d *Dir) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if _, _, err := d.ensureReplaceable(to); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd(), from, d.fd(), to); err != nil {
		return &PathError{Op: "rename", Path: d.Join(from) + " -> " + to, Err: err}
	}
	return nil
}

// RenameNoReplace renames from to to inside d only if to does not exist.
func (d *Dir) RenameNoReplace(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	if err := unix.Renameat2(d.fd(), from, d.fd(), to, unix.RENAME_NOREPLACE); err != nil {
		return &PathError{Op: "rename", Path: d.Join(from) + " -> " + to, Err: err}
	}
	return nil
}

// Remove removes the file name (a symlink itself, never its target). A
// missing file is not an error.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &PathError{Op: "remove", Path: d.Join(name), Err: err}
	}
	return nil
}

// RemoveDir removes the empty subdirectory name.
func (d *Dir) RemoveDir(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd(), name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &PathError{Op: "remove directory", Path: d.Join(name), Err: err}
	}
	return nil
}

// FixOwnerMode sets mode and owner of the regular file name through its open
// descriptor, so a symlink swapped in is never followed. A file with more
// than one hard link is refused ([ErrHardLink]): the other link may be a
// file outside this directory that a chown would hand to its owner.
// changed reports whether anything was different.
func (d *Dir) FixOwnerMode(name string, o FileOptions) (changed bool, err error) {
	f, info, err := d.openSingle(name, unix.O_RDONLY, -1)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fd := int(f.Fd())
	if !ownerMatches(info, o) {
		if err := unix.Fchown(fd, o.UID, o.GID); err != nil {
			return false, &PathError{Op: "chown", Path: d.Join(name), Err: err}
		}
		changed = true
	}
	if changed || info.Mode.Perm() != o.mode() {
		if err := unix.Fchmod(fd, uint32(o.mode())); err != nil {
			return false, &PathError{Op: "chmod", Path: d.Join(name), Err: err}
		}
		changed = changed || info.Mode.Perm() != o.mode()
	}
	return changed, nil
}

// Symlink makes name a symlink to target, replacing an existing symlink
// atomically. It refuses to replace anything that is not a symlink.
func (d *Dir) Symlink(target, name string) (changed bool, err error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	info, err := d.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, err
	case info.Mode&fs.ModeSymlink == 0:
		return false, &PathError{Op: "replace", Path: d.Join(name), Err: errors.New("exists and is not a symbolic link")}
	default:
		if cur, err := d.Readlink(name); err == nil && cur == target {
			return false, nil
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := "." + name + TempMarker + hex.EncodeToString(rnd[:])
	if err := unix.Symlinkat(target, d.fd(), tmp); err != nil {
		return false, &PathError{Op: "symlink", Path: d.Join(name), Err: err}
	}
	if err := unix.Renameat(d.fd(), tmp, d.fd(), name); err != nil {
		unix.Unlinkat(d.fd(), tmp, 0)
		return false, &PathError{Op: "rename", Path: d.Join(name), Err: err}
	}
	return true, d.Sync()
}

// Readlink returns the target of the symlink name.
func (d *Dir) Readlink(name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(d.fd(), name, buf)
	if err != nil {
		return "", &PathError{Op: "readlink", Path: d.Join(name), Err: err}
	}
	return string(buf[:n]), nil
}

// ErrTooManyEntries reports a directory with more entries than rdctl reads
// there. In a directory another user can write, that user decides how many
// names there are; rdctl's memory and output must not grow with them.
var ErrTooManyEntries = errors.New("has more entries than rdctl reads there")

// Names lists the directory's entries, sorted. Use it on directories only
// root writes; elsewhere use NamesAtMost.
func (d *Dir) Names() ([]string, error) {
	var names []string
	err := d.eachName(func(n string) bool {
		names = append(names, n)
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// NamesAtMost lists the directory's entries, sorted, when there are at
// most max; otherwise it fails with ErrTooManyEntries, having read max+1.
func (d *Dir) NamesAtMost(max int) ([]string, error) {
	var names []string
	err := d.eachName(func(n string) bool {
		names = append(names, n)
		return len(names) <= max
	})
	if err != nil {
		return nil, err
	}
	if len(names) > max {
		return nil, &PathError{Op: "list", Path: d.path, Err: fmt.Errorf("%w (more than %d)", ErrTooManyEntries, max)}
	}
	slices.Sort(names)
	return names, nil
}

// eachName calls fn with each entry's name, in the directory's order, a
// batch read at a time, until fn returns false.
func (d *Dir) eachName(fn func(string) bool) error {
	// A fresh descriptor, so reading entries does not move d's offset.
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &PathError{Op: "list", Path: d.path, Err: err}
	}
	df := os.NewFile(uintptr(fd), d.path)
	defer df.Close()
	for {
		batch, err := df.Readdirnames(256)
		for _, n := range batch {
			if !fn(n) {
				return nil
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return &PathError{Op: "list", Path: d.path, Err: err}
		}
	}
}

// MaxStaleTemps is the most temporaries one RemoveStaleTemps call removes.
// A crashed write leaves one; the directory may be one another user can
// write and fill with names of that shape, so the count is bounded, and
// what a call could not remove is left to the next.
const MaxStaleTemps = 64

// RemoveStaleTemps removes temporary files a crashed write left behind and
// returns their names, sorted: at most MaxStaleTemps of them, however many
// entries the directory has, in memory that does not grow with them.
func (d *Dir) RemoveStaleTemps() ([]string, error) {
	var stale []string
	err := d.eachName(func(n string) bool {
		if strings.HasPrefix(n, ".") && strings.Contains(n, TempMarker) {
			stale = append(stale, n)
		}
		return len(stale) < MaxStaleTemps
	})
	if err != nil {
		return nil, err
	}
	// Removed after the listing: unlinking while the directory is being
	// read may make the kernel skip entries.
	slices.Sort(stale)
	var removed []string
	for _, n := range stale {
		if err := d.Remove(n); err != nil {
			return removed, err
		}
		removed = append(removed, n)
	}
	if len(removed) > 0 {
		return removed, d.Sync()
	}
	return nil, nil
}

// WriteFile atomically writes data to path (see [Dir.WriteFile]); the parent
// directory must exist.
func WriteFile(path string, data []byte, o FileOptions) (changed bool, err error) {
	d, err := OpenDir(filepath.Dir(path))
	if err != nil {
		return false, err
	}
	defer d.Close()
	return d.WriteFile(filepath.Base(path), data, o)
}

// FD returns the directory's descriptor for *at(2) calls the package does
// not wrap. The descriptor stays owned by d.
func (d *Dir) FD() int { return d.fd() }
