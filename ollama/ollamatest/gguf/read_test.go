package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// readFile decodes a GGUF v3 file of F32 tensors back into a File. It exists
// to check the writer, but it decodes arbitrary bytes (the fuzz targets feed
// it garbage), so every length is checked against what is left before
// anything is allocated, and it never panics.
func readFile(b []byte) (*File, error) {
	d := &decoder{b: b}
	if string(d.bytes(4)) != Magic {
		return nil, errors.New("not a GGUF file")
	}
	if v := d.u32(); v != Version {
		return nil, fmt.Errorf("version %d, want %d", v, Version)
	}
	nt, nkv := d.u64(), d.u64()
	if d.err != nil {
		return nil, d.err
	}
	// Each entry takes at least 8+4 bytes, each tensor info at least 8+4+4+8.
	if nkv > uint64(d.left())/12 || nt > uint64(d.left())/24 {
		return nil, errors.New("counts exceed the file size")
	}
	f := &File{}
	for range nkv {
		key := d.str()
		t := ValueType(d.u32())
		v := d.value(t)
		if d.err != nil {
			return nil, d.err
		}
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	align, err := f.Alignment()
	if err != nil {
		return nil, err
	}
	type info struct {
		dims   []uint64
		offset uint64
	}
	infos := make([]info, 0, nt)
	for range nt {
		name := d.str()
		nd := d.u32()
		if nd == 0 || nd > 4 {
			return nil, fmt.Errorf("tensor %q has %d dims", name, nd)
		}
		dims := make([]uint64, nd)
		for i := range dims {
			dims[i] = d.u64()
		}
		if typ := d.u32(); typ != TensorTypeF32 && d.err == nil {
			return nil, fmt.Errorf("tensor %q has type %d, want F32", name, typ)
		}
		off := d.u64()
		if d.err != nil {
			return nil, d.err
		}
		if off%uint64(align) != 0 {
			return nil, fmt.Errorf("tensor %q offset %d is not aligned to %d", name, off, align)
		}
		f.Tensors = append(f.Tensors, Tensor{Name: name, Dims: dims})
		infos = append(infos, info{dims, off})
	}
	start := pad(uint64(d.off), align)
	for i, in := range infos {
		n := uint64(1)
		for _, x := range in.dims {
			if x == 0 || n > uint64(len(b))/x {
				return nil, fmt.Errorf("tensor %q dims %v exceed the file size", f.Tensors[i].Name, in.dims)
			}
			n *= x
		}
		at := start + in.offset
		if at < start || at > uint64(len(b)) || n*4 > uint64(len(b))-at {
			return nil, fmt.Errorf("tensor %q data runs past the end", f.Tensors[i].Name)
		}
		data := make([]float32, n)
		for j := range data {
			data[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[at+uint64(j)*4:]))
		}
		f.Tensors[i].Data = data
	}
	return f, nil
}

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.left()) {
		d.err = fmt.Errorf("truncated at byte %d: need %d more", d.off, n)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.bytes(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.bytes(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.bytes(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string { return string(d.bytes(d.u64())) }

// scalar reads one value of a non-array type.
func (d *decoder) scalar(t ValueType) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		switch v := d.u8(); v {
		case 0, 1:
			return v == 1
		default:
			if d.err == nil {
				d.err = fmt.Errorf("bool value %d", v)
			}
			return false
		}
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	}
	if d.err == nil {
		d.err = fmt.Errorf("unknown value type %d", t)
	}
	return nil
}

func (d *decoder) value(t ValueType) any {
	if t != TypeArray {
		return d.scalar(t)
	}
	et := ValueType(d.u32())
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if n > uint64(d.left()) { // every element takes at least one byte
		d.err = fmt.Errorf("array of %d elements exceeds the file size", n)
		return nil
	}
	switch et {
	case TypeUint8:
		return readArray[uint8](d, et, n)
	case TypeInt8:
		return readArray[int8](d, et, n)
	case TypeUint16:
		return readArray[uint16](d, et, n)
	case TypeInt16:
		return readArray[int16](d, et, n)
	case TypeUint32:
		return readArray[uint32](d, et, n)
	case TypeInt32:
		return readArray[int32](d, et, n)
	case TypeFloat32:
		return readArray[float32](d, et, n)
	case TypeBool:
		return readArray[bool](d, et, n)
	case TypeString:
		return readArray[string](d, et, n)
	case TypeUint64:
		return readArray[uint64](d, et, n)
	case TypeInt64:
		return readArray[int64](d, et, n)
	case TypeFloat64:
		return readArray[float64](d, et, n)
	}
	d.err = fmt.Errorf("unsupported array element type %d", et)
	return nil
}

func readArray[T any](d *decoder, t ValueType, n uint64) []T {
	out := make([]T, 0, n)
	for range n {
		v, _ := d.scalar(t).(T)
		if d.err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}
