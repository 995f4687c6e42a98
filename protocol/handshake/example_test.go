package handshake_test

import (
	"encoding/base64"
	"fmt"
	"log"

	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/protocol/peer"
	"github.com/farsign/farsign/protocol/sjs"
)

// A sharedsecret0 session from both ends, with the relay steps as comments.
// publickey0 is the same with NewPublicKey0(signerSPKI, relayURL) and
// Credentials{Key: decrypter}.
func Example() {
	secret := []byte("correct horse battery staple")

	// Initiator: create the agreement, then create-session{init.SessionID()} on
	// the relay, then print init.Line() and init.PEM() for the person.
	init, err := handshake.NewSharedSecret0(secret)
	if err != nil {
		log.Fatal(err)
	}

	// Signer: parse whatever was pasted, join, then join-session{j.SessionID(),
	// j.JoinContext()} on its relay (j.ServerURL() if set).
	js, err := sjs.Parse("# from the CI log\n" + init.PEM())
	if err != nil {
		log.Fatal(err)
	}
	j, err := handshake.Join(js, handshake.Credentials{Password: secret})
	if err != nil {
		log.Fatal(err)
	}
	signer, _ := j.Finish()

	// Initiator: session-joined arrives carrying the signer's join context.
	initiator, err := init.Finish(j.JoinContext())
	if err != nil {
		log.Fatal(err)
	}

	// Both: peer messages, sealed, std base64 in send-message / peer-message.
	ping, _ := peer.Marshal(&peer.Ping{})
	ct, _ := initiator.Seal(ping)
	onTheWire := base64.StdEncoding.EncodeToString(ct)

	received, _ := base64.StdEncoding.DecodeString(onTheWire)
	pt, err := signer.Open(received)
	if err != nil {
		log.Fatal(err) // errors.Is(err, channel.ErrKeyMismatch) for a wrong secret
	}
	msg, _ := peer.Unmarshal(pt)
	fmt.Println(js.Scheme(), msg.Type())
	// Output: sharedsecret0 ping
}
