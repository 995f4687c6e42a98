// Package protocol is the root of farsign's remote-signing protocol, a byte-for-byte
// re-implementation of rcodesign's, so that farsign and rcodesign peers and relays
// can be mixed freely. It holds no code; the pieces live in sub-packages, each with
// one job, in the order a session uses them:
//
//	wire       JSON envelopes between a peer and the relay (hello, create-session,
//	           join-session, send-message, goodbye and the relay's replies).
//	sjs        The session join string: CBOR container, one-line and PEM text forms,
//	           lenient parsing of whatever a person pastes.
//	spake2     SPAKE2 over Ed25519 (python-spake2 / Rust spake2 0.4 compatible),
//	           used by the sharedsecret0 scheme.
//	handshake  The two key-agreement schemes, publickey0 (RSA-OAEP + AES-GCM +
//	           X25519) and sharedsecret0 (SPAKE2), for both roles, ending in HKDF
//	           session keys and a channel.
//	channel    ChaCha20-Poly1305 with implicit per-direction counters: every peer
//	           message after the handshake is sealed here; replays, reordering,
//	           tampering and oversized messages are typed errors.
//	peer       The messages inside the channel (ping, pong, certificate request and
//	           answer, sign request, signature) in rcodesign's exact JSON.
//
// A session, seen from the initiator (A, the CI job) and the signer (B, the key
// holder):
//
//	A: init := handshake.NewPublicKey0(spki, relayURL)   // or NewSharedSecret0(pw)
//	A: wire create-session{init.SessionID()}; print init.Line() and init.PEM()
//	B: js := sjs.Parse(pasted text)
//	B: j := handshake.Join(js, handshake.Credentials{Key: k})  // or Password
//	B: connect to j.ServerURL() (or its configured relay);
//	   wire join-session{j.SessionID(), j.JoinContext()}; ch := j.Finish()
//	A: on session-joined{context}: ch := init.Finish(context)
//	A, B: exchange peer messages through ch.Seal/ch.Open, std base64 in
//	      send-message / peer-message.
//
// The packages follow what rcodesign actually does on the wire (apple-codesign 0.29),
// which differs from its published protocol document in places: CBOR arrays of
// integers inside publickey0, two stray 0xFF bytes after every join string, X25519
// rather than Ed25519, both SPAKE2 identities bound on both sides, and a required
// "chain" field. Each package's documentation states the rules it implements.
package protocol
