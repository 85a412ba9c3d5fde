package pfx

import (
	"bytes"
	"crypto/sha1"
)

// Purposes of PKCS#12 KDF output (RFC 7292 appendix B.3), the "ID" byte.
const (
	kdfKey = 1
	kdfIV  = 2
	kdfMAC = 3
)

// pkcs12KDF is the PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-1, the hash of every PKCS#12
// PBE scheme: size bytes for purpose id from password (a NUL-terminated BMPString, or no bytes) and salt.
// The caller bounds iterations: each output block of 20 bytes costs that many SHA-1 computations.
func pkcs12KDF(password, salt []byte, iterations int, id byte, size int) []byte {
	const u, v = sha1.Size, 64 // SHA-1's output and block sizes in bytes
	diversifier := bytes.Repeat([]byte{id}, v)
	input := append(repeatToBlocks(salt, v), repeatToBlocks(password, v)...)
	out := make([]byte, 0, size+u)
	for {
		a := sha1.Sum(append(diversifier, input...))
		for range iterations - 1 { // a non-positive count means one hash, as in go-pkcs12
			a = sha1.Sum(a[:])
		}
		out = append(out, a[:]...)
		if len(out) >= size {
			return out[:size]
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block I_j of the input, with B = A repeated to v bytes.
		var b [v]byte
		for k := range b {
			b[k] = a[k%u]
		}
		for block := input; len(block) >= v; block = block[v:] {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(block[k]) + int(b[k]) + carry
				block[k], carry = byte(sum), sum>>8
			}
		}
	}
}

// repeatToBlocks repeats pattern to fill whole v-byte blocks, truncating the last copy; nothing for nothing.
func repeatToBlocks(pattern []byte, v int) []byte {
	if len(pattern) == 0 {
		return nil
	}
	n := v * ((len(pattern) + v - 1) / v)
	return bytes.Repeat(pattern, (n+len(pattern)-1)/len(pattern))[:n]
}
