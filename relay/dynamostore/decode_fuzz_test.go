package dynamostore

import (
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FuzzDecode feeds decode items whose attributes come from the fuzzer (items are
// read from a table anybody with write access can fill): it must never panic, and
// whatever it accepts must round-trip the attributes it was given.
func FuzzDecode(f *testing.F) {
	f.Add("3f2504e0-4f89-41d3-9a0c-0305e82c3301", "conn-a", "", "1700000600", false, true, "ctx")
	f.Add("s", "conn-a", "conn-b", "-1", true, false, "")
	f.Add("s", "", "", "1e3", false, false, "")
	f.Add("s", "a", "b", "99999999999999999999", true, true, "")
	f.Fuzz(func(t *testing.T, id, initiator, joiner, ttl string, hasJoiner, hasContext bool, context string) {
		item := map[string]types.AttributeValue{
			KeySessionID:  str(id),
			AttrInitiator: str(initiator),
			AttrTTL:       &types.AttributeValueMemberN{Value: ttl},
		}
		if hasJoiner {
			item[AttrJoiner] = str(joiner)
		}
		if hasContext {
			item[AttrInitiatorContext] = str(context)
		}
		s, err := decode(item)
		if err != nil {
			return
		}
		secs, perr := strconv.ParseInt(ttl, 10, 64)
		if perr != nil || s.Expires.Unix() != secs {
			t.Fatalf("accepted ttl %q as %v", ttl, s.Expires)
		}
		if s.ID != id || s.Initiator != initiator || s.Initiator == "" {
			t.Fatalf("decoded %+v from id %q initiator %q", s, id, initiator)
		}
		if hasJoiner && s.Joiner != joiner || !hasJoiner && s.Joiner != "" {
			t.Fatalf("joiner %q from %q (present %v)", s.Joiner, joiner, hasJoiner)
		}
		if hasContext != (s.InitiatorContext != nil) || hasContext && *s.InitiatorContext != context {
			t.Fatalf("context %v from %q (present %v)", s.InitiatorContext, context, hasContext)
		}
	})
}
