// Package gguf writes GGUF v3 model files: the single-file format that
// llama.cpp and Ollama load.
//
// It is a writer only, small enough to read in one sitting, made for tests
// that need a real model file without downloading one. It covers what a tiny
// model needs: metadata keys of every scalar type, arrays of scalars or
// strings, and F32 tensors. It does not quantize and does not read.
//
// # Layout of a GGUF v3 file
//
// All numbers are little-endian. A string is a uint64 byte length followed by
// the bytes (no terminator).
//
//	header      "GGUF", uint32 version (3), uint64 tensor count, uint64 key/value count
//	key/values  per entry: string key, uint32 value type, value
//	            an array value is: uint32 element type, uint64 length, elements
//	tensor info per tensor: string name, uint32 dim count, uint64 dims…,
//	            uint32 ggml type, uint64 offset of its data from the data section start
//	padding     zero bytes up to a multiple of the alignment
//	data        each tensor's bytes at its offset, each padded to the alignment
//
// The alignment is the uint32 key "general.alignment", 32 when absent. Dims
// are in ggml order, fastest-varying first: a matrix that maps n_in inputs to
// n_out outputs is [n_in, n_out], and its data is n_out rows of n_in values.
package gguf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the GGUF version this package writes.
const Version = 3

// DefaultAlignment is the alignment of the data section and of every tensor
// in it when the file has no "general.alignment" key.
const DefaultAlignment = 32

// AlignmentKey is the metadata key that overrides [DefaultAlignment]. Its
// value must be a uint32 multiple of 8.
const AlignmentKey = "general.alignment"

// ValueType is the type tag GGUF stores before each metadata value.
type ValueType uint32

// The GGUF metadata value types, with the Go types [File.Set] maps to them.
const (
	TypeUint8   ValueType = 0  // uint8
	TypeInt8    ValueType = 1  // int8
	TypeUint16  ValueType = 2  // uint16
	TypeInt16   ValueType = 3  // int16
	TypeUint32  ValueType = 4  // uint32
	TypeInt32   ValueType = 5  // int32
	TypeFloat32 ValueType = 6  // float32
	TypeBool    ValueType = 7  // bool
	TypeString  ValueType = 8  // string
	TypeArray   ValueType = 9  // []T for any T above except arrays
	TypeUint64  ValueType = 10 // uint64
	TypeInt64   ValueType = 11 // int64
	TypeFloat64 ValueType = 12 // float64
)

// TensorTypeF32 is the ggml type of 32-bit float tensors, the only tensor
// type this package writes.
const TensorTypeF32 = 0

// KV is one metadata entry. Value has one of the Go types listed with the
// Type constants (uint8 … float64, bool, string) or a slice of one of them.
// Plain int, uint and nested slices are rejected: GGUF needs an explicit width.
type KV struct {
	Key   string
	Value any
}

// Tensor is one F32 tensor. Dims are in ggml order (fastest-varying first)
// and Data holds exactly the product of Dims values.
type Tensor struct {
	Name string
	Dims []uint64
	Data []float32
}

// File is a GGUF file in memory. Entries and tensors are written in order,
// so the same File always encodes to the same bytes (and so to the same
// digest, which lets Ollama reuse a blob it already holds).
type File struct {
	KV      []KV
	Tensors []Tensor
}

// Set sets key to v, replacing an existing entry in place or appending a new
// one. The type of v is checked when the file is written.
func (f *File) Set(key string, v any) {
	for i := range f.KV {
		if f.KV[i].Key == key {
			f.KV[i].Value = v
			return
		}
	}
	f.KV = append(f.KV, KV{Key: key, Value: v})
}

// Get returns the value of key and whether it is present.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// AddTensor appends an F32 tensor.
func (f *File) AddTensor(name string, data []float32, dims ...uint64) {
	f.Tensors = append(f.Tensors, Tensor{Name: name, Dims: dims, Data: data})
}

// Alignment returns the file's alignment: the "general.alignment" value, or
// [DefaultAlignment]. It fails when the key has the wrong type or value.
func (f *File) Alignment() (int, error) {
	v, ok := f.Get(AlignmentKey)
	if !ok {
		return DefaultAlignment, nil
	}
	a, ok := v.(uint32)
	if !ok {
		return 0, fmt.Errorf("gguf: %s is %T, want uint32", AlignmentKey, v)
	}
	if a == 0 || a%8 != 0 {
		return 0, fmt.Errorf("gguf: %s is %d, want a positive multiple of 8", AlignmentKey, a)
	}
	return int(a), nil
}

// Validate reports the first reason the file cannot be written: a duplicate
// or empty key or tensor name, a value of an unsupported Go type, a tensor
// whose data does not match its dims, or a bad alignment.
func (f *File) Validate() error {
	if _, err := f.Alignment(); err != nil {
		return err
	}
	keys := make(map[string]bool, len(f.KV))
	for _, kv := range f.KV {
		if kv.Key == "" {
			return errors.New("gguf: empty metadata key")
		}
		if keys[kv.Key] {
			return fmt.Errorf("gguf: duplicate metadata key %q", kv.Key)
		}
		keys[kv.Key] = true
		if _, err := typeOf(kv.Value); err != nil {
			return fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
	}
	names := make(map[string]bool, len(f.Tensors))
	for _, t := range f.Tensors {
		if t.Name == "" {
			return errors.New("gguf: tensor with an empty name")
		}
		if names[t.Name] {
			return fmt.Errorf("gguf: duplicate tensor %q", t.Name)
		}
		names[t.Name] = true
		if len(t.Dims) == 0 || len(t.Dims) > 4 {
			return fmt.Errorf("gguf: tensor %q has %d dims, want 1 to 4", t.Name, len(t.Dims))
		}
		n := uint64(1)
		for _, d := range t.Dims {
			if d == 0 {
				return fmt.Errorf("gguf: tensor %q has a zero dim in %v", t.Name, t.Dims)
			}
			if n > math.MaxInt/4/d {
				return fmt.Errorf("gguf: tensor %q dims %v are too large", t.Name, t.Dims)
			}
			n *= d
		}
		if uint64(len(t.Data)) != n {
			return fmt.Errorf("gguf: tensor %q has %d values, its dims %v need %d", t.Name, len(t.Data), t.Dims, n)
		}
	}
	return nil
}

// MarshalBinary encodes the file.
func (f *File) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteTo validates the file and writes it to w.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	align, _ := f.Alignment()
	cw := &countWriter{w: w}
	e := &encoder{w: bufio.NewWriterSize(cw, 64<<10)}

	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(f.Tensors)))
	e.u64(uint64(len(f.KV)))
	for _, kv := range f.KV {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	var offset uint64
	for _, t := range f.Tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(TensorTypeF32)
		e.u64(offset)
		offset += pad(uint64(len(t.Data))*4, align)
	}
	e.zeros(int(pad(uint64(e.n), align)) - e.n)
	for _, t := range f.Tensors {
		for _, v := range t.Data {
			e.u32(math.Float32bits(v))
		}
		size := len(t.Data) * 4
		e.zeros(int(pad(uint64(size), align)) - size)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return cw.n, e.err
}

// pad rounds n up to a multiple of align.
func pad(n uint64, align int) uint64 {
	a := uint64(align)
	return (n + a - 1) / a * a
}

// typeOf returns the GGUF type of v, or an error naming the Go type.
func typeOf(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32,
		[]bool, []string, []uint64, []int64, []float64:
		return TypeArray, nil
	case int, uint, []int, []uint:
		return 0, fmt.Errorf("unsupported type %T: use a sized type such as int32 or uint64", v)
	}
	return 0, fmt.Errorf("unsupported type %T", v)
}

// encoder writes little-endian values and remembers the first error.
type encoder struct {
	w   *bufio.Writer
	n   int // bytes written so far, for the padding before the data section
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err != nil {
		return
	}
	var n int
	n, e.err = e.w.Write(p)
	e.n += n
}

func (e *encoder) zeros(n int) {
	e.raw(make([]byte, n))
}

func (e *encoder) u8(v uint8) { e.raw([]byte{v}) }

func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:2], v)
	e.raw(e.buf[:2])
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:4], v)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], v)
	e.raw(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

// value writes a type tag and the value; typeOf has accepted v.
func (e *encoder) value(v any) {
	t, _ := typeOf(v)
	e.u32(uint32(t))
	switch v := v.(type) {
	case []uint8:
		array(e, TypeUint8, v, e.u8)
	case []int8:
		array(e, TypeInt8, v, func(x int8) { e.u8(uint8(x)) })
	case []uint16:
		array(e, TypeUint16, v, e.u16)
	case []int16:
		array(e, TypeInt16, v, func(x int16) { e.u16(uint16(x)) })
	case []uint32:
		array(e, TypeUint32, v, e.u32)
	case []int32:
		array(e, TypeInt32, v, func(x int32) { e.u32(uint32(x)) })
	case []float32:
		array(e, TypeFloat32, v, func(x float32) { e.u32(math.Float32bits(x)) })
	case []bool:
		array(e, TypeBool, v, func(x bool) { e.scalar(x) })
	case []string:
		array(e, TypeString, v, e.str)
	case []uint64:
		array(e, TypeUint64, v, e.u64)
	case []int64:
		array(e, TypeInt64, v, func(x int64) { e.u64(uint64(x)) })
	case []float64:
		array(e, TypeFloat64, v, func(x float64) { e.u64(math.Float64bits(x)) })
	default:
		e.scalar(v)
	}
}

// scalar writes a scalar value without its type tag.
func (e *encoder) scalar(v any) {
	switch v := v.(type) {
	case uint8:
		e.u8(v)
	case int8:
		e.u8(uint8(v))
	case uint16:
		e.u16(v)
	case int16:
		e.u16(uint16(v))
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case float32:
		e.u32(math.Float32bits(v))
	case bool:
		if v {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(v)
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float64:
		e.u64(math.Float64bits(v))
	}
}

// array writes an array body: element type, length, elements.
func array[T any](e *encoder, t ValueType, v []T, put func(T)) {
	e.u32(uint32(t))
	e.u64(uint64(len(v)))
	for _, x := range v {
		put(x)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
