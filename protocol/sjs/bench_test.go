package sjs

import "testing"

// Join strings are decoded once per session, so these exist to catch gross
// regressions (for example a per-element allocation storm), not to tune.

func BenchmarkUnmarshalPublicKey0(b *testing.B) {
	raw, err := Marshal(samplePK0())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalPublicKey0(b *testing.B) {
	js := samplePK0()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(js); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalPublicKey0Message(b *testing.B) {
	raw := unhex(b, vecInner)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalPublicKey0Message(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalPublicKey0Message(b *testing.B) {
	m, err := UnmarshalPublicKey0Message(unhex(b, vecInner))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalPublicKey0Message(m); err != nil {
			b.Fatal(err)
		}
	}
}
