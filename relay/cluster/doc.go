// Package cluster lets several `relay serve` processes behind one load balancer
// act as one relay.
//
// Sharing the session Store (relay/dynamostore) is not enough for that: a
// process can only write to the websockets it holds, and the two peers of a
// session may well have been sent to different processes. This package
// supplies the missing piece, delivery across processes, in the shape API
// Gateway already gives the Lambda relay, so that the core needs no change:
//
//   - Connection ids name their owner. A process (a Node) mints the id of
//     every websocket it accepts as
//
//     base64url(advertise URL) "." base64url(12 random bytes) "." base64url(tag)
//
//     where the advertise URL is where other processes reach this one
//     (--cluster-advertise-url) and the tag is an HMAC of the first two parts
//     under a key derived from the cluster secret. The ids are what the Store
//     records as a session's initiator and joiner, so any process that reads a
//     session knows where each peer lives without a membership registry, and
//     processes can come and go (autoscaling) without reconfiguring the
//     others. Because of the tag, a process only ever sends requests to URLs
//     that a holder of the cluster secret put in an id: whoever can write to
//     the Store cannot turn the relays into an HTTP client for arbitrary
//     internal addresses.
//
//   - Each Node serves API Gateway's management API on its own listener
//     (--cluster-listen): POST /@connections/{id} writes the body to that
//     websocket as one text message, DELETE /@connections/{id} closes it, and
//     an id that is not (or no longer) connected here answers 410 with
//     GoneException, exactly as API Gateway does.
//
//   - The relay.Poster the core uses (Node.Poster) writes to local
//     connections directly and sends everything else through relay/apigw's
//     Poster, the very code the Lambda uses against API Gateway, pointed at
//     the owner's advertise URL. A 410 is relay.ErrGone, which the core
//     treats as that peer's disconnect, and so is a refused TCP connection:
//     no process listens there any more, so none of its websockets exist.
//
// Ordering: Post returns only once the owner has queued the message on the
// websocket's ordered writer, and the core waits for the reply to the
// requester before it forwards to the peer, so "reply before forward" holds
// across processes as it does within one.
//
// # Authentication
//
// Every process of a cluster shares one secret (a file or an environment
// variable, never a command-line argument). Requests between processes are
// signed with AWS Signature Version 4, which the AWS SDK in relay/apigw
// already produces: the access key id is "farsign-relay-cluster", the region
// "farsign" and the secret access key is derived from the cluster secret. The
// receiving Node recomputes the signature over the method, path, signed
// headers and a SHA-256 of the body, compares it in constant time, and
// refuses a request dated more than five minutes from its own clock (403
// ForbiddenException). The secret itself never crosses the network.
//
// What the listener does not do: encrypt. What crosses it is what crosses the
// public websocket anyway (the peers' messages are end-to-end encrypted, and
// the relay never holds a key), and a replayed request inside the five-minute
// window can only repeat a ciphertext the peers' channel rejects. Keep the
// cluster listener on a private network, or put TLS in front of it and use an
// https:// advertise URL.
//
// # Limits
//
// Bodies are bounded (MaxBody), so are concurrent requests (MaxInFlight,
// answered 429 LimitExceededException, which the sender's SDK retries), and
// every outgoing request has a deadline (PostTimeout).
package cluster
