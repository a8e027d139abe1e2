// Package wire is sprite's wire format: length-prefixed frames whose payloads
// are CBOR (RFC 8949) maps with small integer keys. The Go structs in this
// package and in the packages that define calls are the schema; the format is
// written down in docs/protocol.md.
//
// A frame is an 8-byte header followed by the payload:
//
//	offset 0  magic   0x53 ('S')
//	offset 1  version 1
//	offset 2  type    one of the Frame* constants
//	offset 3  flags   reserved, must be 0
//	offset 4  length  payload length, uint32 big endian, <= the reader's limit
//
// Decoding never trusts the peer: a bad magic, version, type or flag, a
// length over the limit, or a payload that is not the CBOR the receiver
// expects is an error, and the transport answers such an error by closing the
// connection with a logged reason. The decoder is fuzzed (wire_fuzz_test.go).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame header constants.
const (
	Magic      = 0x53
	Version    = 1
	HeaderSize = 8

	// DefaultMaxFrame bounds a frame's payload unless a reader says otherwise:
	// big enough for a 1 MiB file-system write and its header.
	DefaultMaxFrame = 4 << 20
)

// Frame types.
const (
	FrameCall  byte = 1 // first frame of a stream: a CallHeader
	FrameReply byte = 2 // last frame from the server: a Reply
	FrameMsg   byte = 3 // a CBOR message inside a streaming call
	FrameData  byte = 4 // raw bytes inside a streaming call (stdio, file data)
	FrameEnd   byte = 5 // the sender will send nothing more (half close), empty
	frameMax   byte = 5
)

// Errors the decoder returns; test with errors.Is.
var (
	ErrBadHeader = errors.New("malformed frame header")
	ErrTooLarge  = errors.New("frame larger than the limit")
)

// Frame is one decoded frame.
type Frame struct {
	Type    byte
	Payload []byte
}

// WriteFrame writes one frame. It refuses payloads over DefaultMaxFrame-sized
// limits of the caller's choosing by returning ErrTooLarge before writing.
func WriteFrame(w io.Writer, typ byte, payload []byte, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if len(payload) > limit {
		return fmt.Errorf("write frame: %d bytes: %w (limit %d)", len(payload), ErrTooLarge, limit)
	}
	if typ == 0 || typ > frameMax {
		return fmt.Errorf("write frame: unknown type %d: %w", typ, ErrBadHeader)
	}
	buf := make([]byte, HeaderSize+len(payload))
	buf[0], buf[1], buf[2], buf[3] = Magic, Version, typ, 0
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(payload)))
	copy(buf[HeaderSize:], payload)
	_, err := w.Write(buf)
	return err
}

// ParseHeader checks an 8-byte header and returns the type and payload length.
func ParseHeader(h []byte, limit int) (typ byte, n int, err error) {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if len(h) < HeaderSize {
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrBadHeader, len(h))
	}
	if h[0] != Magic {
		return 0, 0, fmt.Errorf("%w: magic 0x%02x, want 0x%02x", ErrBadHeader, h[0], Magic)
	}
	if h[1] != Version {
		return 0, 0, fmt.Errorf("%w: version %d, this build speaks %d", ErrBadHeader, h[1], Version)
	}
	if h[2] == 0 || h[2] > frameMax {
		return 0, 0, fmt.Errorf("%w: unknown type %d", ErrBadHeader, h[2])
	}
	if h[3] != 0 {
		return 0, 0, fmt.Errorf("%w: flags 0x%02x", ErrBadHeader, h[3])
	}
	size := binary.BigEndian.Uint32(h[4:8])
	if uint64(size) > uint64(limit) {
		return 0, 0, fmt.Errorf("read frame: %d bytes: %w (limit %d)", size, ErrTooLarge, limit)
	}
	return h[2], int(size), nil
}

// ReadFrame reads one frame whose payload is at most limit bytes.
func ReadFrame(r io.Reader, limit int) (Frame, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	typ, n, err := ParseHeader(h[:], limit)
	if err != nil {
		return Frame{}, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("read frame payload: %w", err)
	}
	return Frame{Type: typ, Payload: p}, nil
}
