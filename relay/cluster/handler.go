package cluster

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/farsign/farsign/relay"
)

// Handler returns the node's cluster endpoint, to serve on the cluster
// listener (not on the public websocket listener):
//
//	POST   /@connections/{id}   deliver the body to local websocket id (200)
//	DELETE /@connections/{id}   close local websocket id (204)
//
// Requests must carry a valid cluster signature (else 403
// ForbiddenException). An id this node does not hold answers 410
// GoneException; a body over MaxBody 413 PayloadTooLargeException; more than
// MaxInFlight requests at once 429 LimitExceededException. These are API
// Gateway's codes, so relay/apigw's Poster maps them the same way on both.
func (n *Node) Handler(local relay.Poster) http.Handler {
	h := &handler{n: n, local: local, slots: make(chan struct{}, n.cfg.MaxInFlight)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /@connections/{id}", h.post)
	mux.HandleFunc("DELETE /@connections/{id}", h.close)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "NotFoundException", "not a relay cluster endpoint")
	})
	return mux
}

type handler struct {
	n     *Node
	local relay.Poster
	slots chan struct{}
}

// serve admits a request (a free slot, a bounded body, a valid signature,
// a connection this node minted) and passes it to do. It answers the client
// itself when the request goes no further.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, do func(id string, body []byte)) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		writeError(w, http.StatusTooManyRequests, "LimitExceededException", "too many concurrent requests")
		return
	}
	// Cheap checks first, so junk is refused before its body is read.
	if auth := r.Header.Values("Authorization"); len(auth) != 1 {
		h.refuse(w, r, errors.New("cluster: request not signed"))
		return
	} else if _, err := parseAuthorization(auth[0]); err != nil {
		h.refuse(w, r, err)
		return
	}
	if r.ContentLength > h.n.cfg.MaxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "message too long")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.n.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "message too long")
		} else {
			writeError(w, http.StatusBadRequest, "BadRequestException", "reading the request body failed")
		}
		return
	}
	if err := h.n.verify(r, body, h.n.cfg.Now()); err != nil {
		h.refuse(w, r, err)
		return
	}
	h.n.stats.Served.Add(1)
	id := r.PathValue("id")
	if !h.n.Local(id) {
		// Minted by another process (or by nobody): not connected here.
		writeError(w, http.StatusGone, "GoneException", "")
		return
	}
	do(id, body)
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, why error) {
	h.n.stats.Refused.Add(1)
	h.n.log.Warn("cluster: refused request", "remote", r.RemoteAddr, "method", r.Method, "reason", why.Error())
	writeError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
}

func (h *handler) post(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, func(id string, body []byte) {
		// The body is the message, freshly allocated: the queue may keep it.
		switch err := h.local.Post(r.Context(), id, body); {
		case err == nil:
			w.WriteHeader(http.StatusOK)
		case errors.Is(err, relay.ErrGone):
			writeError(w, http.StatusGone, "GoneException", "")
		default:
			h.n.log.Warn("cluster: local delivery failed", "conn", id, "err", err)
			writeError(w, http.StatusInternalServerError, "InternalServerErrorException", "delivery failed")
		}
	})
}

func (h *handler) close(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, func(id string, _ []byte) {
		if err := h.local.Close(r.Context(), id); err != nil {
			h.n.log.Warn("cluster: local close failed", "conn", id, "err", err)
			writeError(w, http.StatusInternalServerError, "InternalServerErrorException", "close failed")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// writeError answers the way AWS REST-JSON services do, which is what the
// SDK in relay/apigw decodes: the error type in x-amzn-ErrorType, a message
// in the body.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	var m any
	if msg != "" {
		m = msg
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"message": m})
}
