package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
)

// every returns a file with one key of every supported type.
func every() *File {
	f := &File{}
	f.Set("general.architecture", "llama")
	f.Set("u8", uint8(200))
	f.Set("i8", int8(-100))
	f.Set("u16", uint16(60000))
	f.Set("i16", int16(-30000))
	f.Set("u32", uint32(4000000000))
	f.Set("i32", int32(-2000000000))
	f.Set("f32", float32(1.5))
	f.Set("bool", true)
	f.Set("no", false)
	f.Set("str", "héllo ▁world")
	f.Set("empty", "")
	f.Set("u64", uint64(math.MaxUint64))
	f.Set("i64", int64(math.MinInt64))
	f.Set("f64", math.Pi)
	f.Set("a.u8", []uint8{1, 2, 3})
	f.Set("a.i8", []int8{-1, 2})
	f.Set("a.u16", []uint16{7})
	f.Set("a.i16", []int16{-7, 7})
	f.Set("a.u32", []uint32{1 << 31})
	f.Set("a.i32", []int32{1, 2, 3, 6})
	f.Set("a.f32", []float32{0.25, -3})
	f.Set("a.bool", []bool{true, false, true})
	f.Set("a.str", []string{"<unk>", "<s>", "", "▁a"})
	f.Set("a.u64", []uint64{0, 1})
	f.Set("a.i64", []int64{-5})
	f.Set("a.f64", []float64{1e300})
	f.Set("a.empty", []string{})
	f.AddTensor("one", []float32{1}, 1)
	f.AddTensor("matrix", []float32{1, 2, 3, 4, 5, 6}, 3, 2)
	f.AddTensor("cube", make([]float32, 2*3*5), 2, 3, 5)
	return f
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 8, 32, 64} {
		f := every()
		if align != 0 {
			f.Set(AlignmentKey, align)
		}
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := readFile(b)
		if err != nil {
			t.Fatalf("align %d: read back: %v", align, err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("align %d: round trip differs:\n got %#v\nwant %#v", align, got, f)
		}
		a, _ := f.Alignment()
		if len(b)%a != 0 {
			t.Errorf("align %d: file is %d bytes, not padded to %d", align, len(b), a)
		}
	}
}

func TestHeaderBytes(t *testing.T) {
	f := &File{}
	f.Set("k", uint32(7))
	f.AddTensor("t", []float32{2}, 1)
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.WriteString("GGUF")
	le := func(v any) { binary.Write(&want, binary.LittleEndian, v) }
	le(uint32(3))
	le(uint64(1)) // tensors
	le(uint64(1)) // key/values
	le(uint64(1))
	want.WriteString("k")
	le(uint32(TypeUint32))
	le(uint32(7))
	le(uint64(1))
	want.WriteString("t")
	le(uint32(1)) // dims
	le(uint64(1))
	le(uint32(TensorTypeF32))
	le(uint64(0)) // offset
	for want.Len()%32 != 0 {
		want.WriteByte(0)
	}
	le(float32(2))
	for want.Len()%32 != 0 {
		want.WriteByte(0)
	}
	if !bytes.Equal(b, want.Bytes()) {
		t.Errorf("encoding:\n got %x\nwant %x", b, want.Bytes())
	}
}

func TestWriteToCountsBytes(t *testing.T) {
	var buf bytes.Buffer
	n, err := every().WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
}

func TestDeterministic(t *testing.T) {
	a, _ := every().MarshalBinary()
	b, _ := every().MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Error("the same file encoded to different bytes")
	}
}

func TestSetReplaces(t *testing.T) {
	f := &File{}
	f.Set("a", uint32(1))
	f.Set("b", uint32(2))
	f.Set("a", "x")
	if len(f.KV) != 2 || f.KV[0].Value != "x" {
		t.Errorf("KV = %v, want a replaced in place", f.KV)
	}
	if v, ok := f.Get("b"); !ok || v != uint32(2) {
		t.Errorf("Get(b) = %v, %v", v, ok)
	}
	if _, ok := f.Get("c"); ok {
		t.Error("Get(c) found a missing key")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		f    File
		want string
	}{
		{"int", File{KV: []KV{{"n", 3}}}, "use a sized type"},
		{"struct", File{KV: []KV{{"n", struct{}{}}}}, "unsupported type struct"},
		{"nested", File{KV: []KV{{"n", [][]string{}}}}, "unsupported type"},
		{"empty key", File{KV: []KV{{"", uint8(1)}}}, "empty metadata key"},
		{"dup key", File{KV: []KV{{"a", uint8(1)}, {"a", uint8(1)}}}, "duplicate metadata key"},
		{"alignment type", File{KV: []KV{{AlignmentKey, uint64(32)}}}, "want uint32"},
		{"alignment value", File{KV: []KV{{AlignmentKey, uint32(12)}}}, "multiple of 8"},
		{"no dims", File{Tensors: []Tensor{{Name: "t"}}}, "0 dims"},
		{"zero dim", File{Tensors: []Tensor{{Name: "t", Dims: []uint64{0}}}}, "zero dim"},
		{"short data", File{Tensors: []Tensor{{Name: "t", Dims: []uint64{2, 2}, Data: make([]float32, 3)}}}, "need 4"},
		{"huge dims", File{Tensors: []Tensor{{Name: "t", Dims: []uint64{1 << 40, 1 << 40}}}}, "too large"},
		{"dup tensor", File{Tensors: []Tensor{{"t", []uint64{1}, []float32{0}}, {"t", []uint64{1}, []float32{0}}}}, "duplicate tensor"},
		{"no name", File{Tensors: []Tensor{{"", []uint64{1}, []float32{0}}}}, "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.MarshalBinary()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// fileFrom builds a valid File from arbitrary bytes, so the fuzzer explores
// the writer's input space: key types, lengths, tensor shapes, alignment.
func fileFrom(data []byte) *File {
	r := bytes.NewReader(data)
	next := func() byte { b, _ := r.ReadByte(); return b }
	str := func() string {
		n := int(next() % 16)
		p := make([]byte, n)
		r.Read(p)
		return string(p)
	}
	f := &File{}
	if next()%4 == 0 {
		f.Set(AlignmentKey, uint32(8*(1+int(next()%8))))
	}
	for i := range int(next() % 8) {
		key := "k" + string(rune('a'+i)) + str()
		var v any
		switch next() % 14 {
		case 0:
			v = next()
		case 1:
			v = int8(next())
		case 2:
			v = uint16(next()) << 8
		case 3:
			v = int16(next()) - 128
		case 4:
			v = uint32(next()) * 16777259
		case 5:
			v = int32(next()) * -8388617
		case 6:
			v = float32(next()) / 3
		case 7:
			v = next()%2 == 0
		case 8:
			v = str()
		case 9:
			v = uint64(next()) << 56
		case 10:
			v = int64(next()) - 1<<62
		case 11:
			v = float64(next()) * math.E
		case 12:
			a := make([]string, next()%5)
			for j := range a {
				a[j] = str()
			}
			v = a
		default:
			a := make([]int32, next()%9)
			for j := range a {
				a[j] = int32(next())
			}
			v = a
		}
		f.Set(key, v)
	}
	for i := range int(next() % 4) {
		dims := make([]uint64, 1+next()%3)
		n := uint64(1)
		for j := range dims {
			dims[j] = uint64(1 + next()%5)
			n *= dims[j]
		}
		d := make([]float32, n)
		for j := range d {
			d[j] = float32(int8(next())) / 4
		}
		f.AddTensor("t"+string(rune('0'+i)), d, dims...)
	}
	return f
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 7, 12, 3, 'a', 'b', 'c', 2, 2, 3, 4, 5, 6, 7})
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := fileFrom(data)
		b, err := want.MarshalBinary()
		if err != nil {
			t.Fatalf("a valid file did not encode: %v", err)
		}
		got, err := readFile(b)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, want)
		}
	})
}

// FuzzRead feeds the test reader arbitrary bytes: it must never panic, and
// whatever it accepts must encode back to something it reads the same way.
func FuzzRead(f *testing.F) {
	b, _ := every().MarshalBinary()
	f.Add(b)
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Add([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readFile(data)
		if err != nil {
			return
		}
		b, err := got.MarshalBinary()
		if err != nil {
			// The reader accepts a few files the writer refuses (say,
			// duplicate keys); that is fine for a test reader.
			return
		}
		again, err := readFile(b)
		if err != nil {
			t.Fatalf("re-encoded file does not read: %v", err)
		}
		b2, _ := again.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("re-encoding is not stable")
		}
	})
}
