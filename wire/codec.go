package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ErrBadPayload wraps every payload decoding failure.
var ErrBadPayload = errors.New("malformed payload")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  16,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 12,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v in the deterministic CBOR profile.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes a payload into v, refusing trailing bytes, duplicate
// keys, tags, indefinite lengths and over-deep nesting. Unknown keys are
// skipped, so a newer peer may add optional fields.
func Unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decode %T: %v", ErrBadPayload, v, err)
	}
	return nil
}

// RawMessage is an encoded CBOR value carried without decoding it.
type RawMessage = cbor.RawMessage

// CallHeader is the payload of the FrameCall that opens every stream.
type CallHeader struct {
	Method string     `cbor:"1,keyasint"`
	Args   RawMessage `cbor:"2,keyasint,omitempty"`
	// Keep marks a unary call whose stream the caller would use again: a
	// FrameEnd follows the header at once, and a server that agrees says
	// Reply.Kept and then reads the stream's next call (package rpc).
	Keep bool `cbor:"3,keyasint,omitempty"`
}

// Reply is the payload of the FrameReply that ends every call. Code 0 means
// success and Body holds the result; otherwise Message explains the failure.
type Reply struct {
	Code    int        `cbor:"1,keyasint,omitempty"`
	Message string     `cbor:"2,keyasint,omitempty"`
	Body    RawMessage `cbor:"3,keyasint,omitempty"`
	// Kept answers CallHeader.Keep: the server reads another call from
	// this stream, or the caller's end of it.
	Kept bool `cbor:"4,keyasint,omitempty"`
}

// Reply codes; they mirror the meaning, not the numbers, of errno.
const (
	CodeOK          = 0
	CodeError       = 1 // generic failure, Message says what
	CodeNoMethod    = 2 // the method is unknown to the server
	CodeBadRequest  = 3 // the arguments did not decode
	CodePermission  = 4 // the caller may not do this
	CodeUnavailable = 5 // the server cannot serve this now
	CodeNotFound    = 6
)

// MaxMethodLen bounds the method name of a call.
const MaxMethodLen = 64

// DecodeCallHeader decodes and validates a FrameCall payload.
func DecodeCallHeader(p []byte) (CallHeader, error) {
	var h CallHeader
	if err := Unmarshal(p, &h); err != nil {
		return h, err
	}
	if h.Method == "" || len(h.Method) > MaxMethodLen {
		return h, fmt.Errorf("%w: method name of %d bytes", ErrBadPayload, len(h.Method))
	}
	for _, c := range h.Method {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return h, fmt.Errorf("%w: method name %q has character %q", ErrBadPayload, h.Method, c)
		}
	}
	return h, nil
}
