package convert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// SentencePiece piece types (sentencepiece_model.proto), numbered as GGUF's
// tokenizer.ggml.token_type.
const (
	tokNormal      int32 = 1
	tokUnknown     int32 = 2
	tokControl     int32 = 3
	tokUserDefined int32 = 4
	tokUnused      int32 = 5
	tokByte        int32 = 6
)

type spPiece struct {
	piece string
	score float32
	typ   int32
}

type spModel struct {
	pieces []spPiece
	// modelType is TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
	modelType int
	// addDummyPrefix is NormalizerSpec.add_dummy_prefix (default true).
	addDummyPrefix bool
}

var errProto = errors.New("malformed protobuf")

// protoReader walks protobuf wire format; every length is checked against
// the bytes left.
type protoReader struct{ b []byte }

func (p *protoReader) varint() (uint64, error) {
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		return 0, errProto
	}
	p.b = p.b[n:]
	return v, nil
}

// next returns the field number, wire type, and for length-delimited
// fields the bytes, for varints the value.
func (p *protoReader) next() (field int, wire int, val uint64, data []byte, err error) {
	tag, err := p.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	field, wire = int(tag>>3), int(tag&7)
	switch wire {
	case 0:
		val, err = p.varint()
	case 1:
		if len(p.b) < 8 {
			return 0, 0, 0, nil, errProto
		}
		val, p.b = binary.LittleEndian.Uint64(p.b), p.b[8:]
	case 2:
		var n uint64
		if n, err = p.varint(); err != nil {
			return
		}
		if n > uint64(len(p.b)) {
			return 0, 0, 0, nil, errProto
		}
		data, p.b = p.b[:n], p.b[n:]
	case 5:
		if len(p.b) < 4 {
			return 0, 0, 0, nil, errProto
		}
		val, p.b = uint64(binary.LittleEndian.Uint32(p.b)), p.b[4:]
	default:
		return 0, 0, 0, nil, errProto
	}
	return
}

// parseSentencePiece parses a tokenizer.model (ModelProto).
func parseSentencePiece(b []byte) (*spModel, error) {
	m := &spModel{addDummyPrefix: true, modelType: 1}
	p := &protoReader{b}
	for len(p.b) > 0 {
		field, wire, val, data, err := p.next()
		if err != nil {
			return nil, fmt.Errorf("%w: tokenizer.model: %v", ErrInvalid, err)
		}
		switch {
		case field == 1 && wire == 2:
			sp := spPiece{typ: tokNormal}
			q := &protoReader{data}
			for len(q.b) > 0 {
				f, w, v, d, err := q.next()
				if err != nil {
					return nil, fmt.Errorf("%w: tokenizer.model piece %d: %v", ErrInvalid, len(m.pieces), err)
				}
				switch {
				case f == 1 && w == 2:
					sp.piece = string(d)
				case f == 2 && w == 5:
					sp.score = math.Float32frombits(uint32(v))
				case f == 3 && w == 0:
					sp.typ = int32(v)
				}
			}
			if sp.typ < tokNormal || sp.typ > tokByte {
				return nil, fmt.Errorf("%w: tokenizer.model piece %d (%q) has type %d", ErrInvalid, len(m.pieces), sp.piece, sp.typ)
			}
			if len(m.pieces) >= maxVocab {
				return nil, fmt.Errorf("%w: tokenizer.model has more than %d pieces", ErrInvalid, maxVocab)
			}
			m.pieces = append(m.pieces, sp)
		case field == 2 && wire == 2: // TrainerSpec
			q := &protoReader{data}
			for len(q.b) > 0 {
				f, w, v, _, err := q.next()
				if err != nil {
					return nil, fmt.Errorf("%w: tokenizer.model trainer_spec: %v", ErrInvalid, err)
				}
				if f == 3 && w == 0 {
					m.modelType = int(v)
				}
			}
		case field == 3 && wire == 2: // NormalizerSpec
			q := &protoReader{data}
			for len(q.b) > 0 {
				f, w, v, _, err := q.next()
				if err != nil {
					return nil, fmt.Errorf("%w: tokenizer.model normalizer_spec: %v", ErrInvalid, err)
				}
				if f == 3 && w == 0 {
					m.addDummyPrefix = v != 0
				}
			}
		}
		_ = val
	}
	if len(m.pieces) == 0 {
		return nil, fmt.Errorf("%w: tokenizer.model has no pieces", ErrInvalid)
	}
	return m, nil
}

// appendSentencePiece encodes a ModelProto with pieces and, when
// modelType > 0, a TrainerSpec; used by tests to write tokenizer.model.
func appendSentencePiece(b []byte, pieces []spPiece, modelType int) []byte {
	for _, sp := range pieces {
		var e []byte
		e = protowireString(e, 1, sp.piece)
		e = binary.AppendUvarint(e, 2<<3|5)
		e = binary.LittleEndian.AppendUint32(e, math.Float32bits(sp.score))
		if sp.typ != tokNormal {
			e = binary.AppendUvarint(e, 3<<3|0)
			e = binary.AppendUvarint(e, uint64(sp.typ))
		}
		b = protowireString(b, 1, string(e))
	}
	if modelType > 0 {
		t := binary.AppendUvarint(nil, 3<<3|0)
		t = binary.AppendUvarint(t, uint64(modelType))
		b = protowireString(b, 2, string(t))
	}
	return b
}

func protowireString(b []byte, field int, s string) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
