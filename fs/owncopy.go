package fs

import "syscall"

// A file this host writes alone from empty (client side).
//
// An assembler writes its object file through a read-write descriptor
// and reads back blocks it wrote part of, to change them (GNU as through
// BFD: six such reads for one of Lua's objects). Each read is a call to
// the server, after the call that sends the buffered writes: the kernel
// asks for the file's size first (a Getattr, which carries them), and it
// holds no page that a write(2) only partly filled.
//
// A handle opened for reading and writing (not O_APPEND, not under
// concurrent write sharing) on a regular file with one name that its open
// found empty (O_TRUNC, or a create) keeps a copy of everything written
// through it: own. While the copy is good the file's content is exactly
// the copy, so a read through that handle is answered from it, with no
// call. The copy is dropped for good, and reads go to the server again,
// when
//
//   - another handle on this host may write the file (writable), or
//     this host links it under another name (a file with more than one
//     link starts no copy);
//   - the server sends any invalidation of the file (Recall): a change on
//     its own disk, another host's open that starts concurrent write
//     sharing, ...;
//   - this host truncates the file (Setattr with a size, unsync);
//   - a write through the handle fails, or the copy would pass ownMax.
//
// What a read may then see that the server's disk does not have yet is
// the same as what the kernel's page cache of an open file may show: the
// writes held back (write-behind), and a change made on the server's own
// disk until its invalidation arrives.

// ownMax bounds a handle's copy of its file.
const ownMax = MaxIO

// ownable says whether a handle opened with flags, as the server's reply
// resp describes it, starts a copy of its file.
func ownable(resp *Resp, flags uint32) bool {
	a := resp.Attr
	return flags&syscall.O_ACCMODE == syscall.O_RDWR && flags&syscall.O_APPEND == 0 &&
		resp.Flags&OpenDirect == 0 && a != nil && a.Size == 0 && a.Nlink == 1 && a.Mode&syscall.S_IFMT == syscall.S_IFREG
}

// ownWrite applies a write that succeeded to the copy; b.mu is held.
func (b *wbuf) ownWrite(off int64, data []byte) {
	if b.own == nil {
		return
	}
	end := off + int64(len(data))
	if end > ownMax {
		b.own = nil
		return
	}
	if end > int64(len(b.own)) {
		b.own = append(b.own, make([]byte, end-int64(len(b.own)))...)
	}
	copy(b.own[off:], data)
}

// dropOwn forgets the copy, and the attributes kept with it, for good;
// b.mu is held.
func (b *wbuf) dropOwn() { b.own, b.stat = nil, nil }

// readOwn answers a read through b's handle from its copy, if it has
// one.
func (b *wbuf) readOwn(off int64, size int) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.own == nil || b.err != nil || b.through || off < 0 {
		return nil, false
	}
	if off >= int64(len(b.own)) {
		return []byte{}, true
	}
	return append([]byte(nil), b.own[off:min(off+int64(size), int64(len(b.own)))]...), true
}

// dropOwnOf drops the copies of hs.
func dropOwnOf(hs []*Handle) {
	for _, h := range hs {
		h.wb.mu.Lock()
		h.wb.dropOwn()
		h.wb.mu.Unlock()
	}
}

// An fstat(2) while writing. The kernel asks for the attributes of a file
// after each write to it (it cannot know the new size and times): a
// linker that writes its output a section at a time and looks at its size
// in between (GNU ld: about a hundred times for one of zlib's test
// programs) would cost a call each, which also sends the writes held
// back. While the handle keeps its copy, the file is exactly that copy
// and nothing but this handle's writes changed it since the open: its
// attributes are those of the open with the copy's size, and the time of
// the last write as the modification and change times. Such an answer is
// this host's alone (Attr.Local): never kept, by the client or the
// kernel, so the first stat after the close (which sends the writes)
// sees the server's own times.
//
// Anything else done to the file on this host (chmod, utimes, truncate,
// a link, an unlink or a rename of its name) forgets the attributes
// (unsync, forgetStat), as does everything that drops the copy.

// localStat answers an fstat through b's handle from its copy, if it
// has one.
func (b *wbuf) localStat() (Attr, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.own == nil || b.stat == nil || b.err != nil || b.through {
		return Attr{}, false
	}
	a := *b.stat
	a.Size = int64(len(b.own))
	a.Blocks = (a.Size + 4095) / 4096 * 8
	if b.wrote > a.Mtime {
		a.Mtime, a.Ctime = b.wrote, max(a.Ctime, b.wrote)
	}
	a.NoXattr = false
	a.Local = true
	return a, true
}

// forgetStat makes the handles writing p ask the server for its
// attributes again.
func (c *Client) forgetStat(p string) {
	for _, h := range c.writers(p) {
		h.wb.mu.Lock()
		h.wb.stat = nil
		h.wb.mu.Unlock()
	}
}
