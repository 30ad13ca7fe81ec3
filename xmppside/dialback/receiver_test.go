package dialback_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/umpp/umpp/xmppside/dialback"
)

type answerFunc func(context.Context, dialback.Element) (dialback.Element, error)

func (f answerFunc) Verify(ctx context.Context, req dialback.Element) (dialback.Element, error) {
	return f(ctx, req)
}

func TestReceiverCheck(t *testing.T) {
	req := dialback.Element{Kind: dialback.Result, From: "a.example", To: "b.example", Key: "k"}
	answer := func(t dialback.Type) dialback.DialFunc {
		return func(context.Context, string) (dialback.Verifier, error) {
			return answerFunc(func(_ context.Context, v dialback.Element) (dialback.Element, error) {
				if v.Kind != dialback.Verify || v.From != "b.example" || v.To != "a.example" || v.ID != "S1" || v.Key != "k" {
					return dialback.Element{}, errors.New("unexpected db:verify")
				}
				return v.Reply(t), nil
			}), nil
		}
	}
	failDial := func(err error) dialback.DialFunc {
		return func(context.Context, string) (dialback.Verifier, error) { return nil, err }
	}
	tests := []struct {
		name     string
		hosts    string
		dial     dialback.DialFunc
		noErrors bool
		wantType dialback.Type
		wantCond dialback.Condition
	}{
		{"valid", "b.example", answer(dialback.TypeValid), false, dialback.TypeValid, ""},
		{"invalid", "b.example", answer(dialback.TypeInvalid), false, dialback.TypeInvalid, ""},
		{"target not hosted", "c.example", answer(dialback.TypeValid), false, dialback.TypeError, dialback.ConditionItemNotFound},
		{"target not hosted, peer without errors", "c.example", answer(dialback.TypeValid), true, dialback.TypeInvalid, ""},
		{"domain does not resolve", "b.example", failDial(&net.DNSError{Err: "no such host", Name: "a.example", IsNotFound: true}), false,
			dialback.TypeError, dialback.ConditionRemoteServerNotFound},
		{"connection refused", "b.example", failDial(errors.New("connection refused")), false,
			dialback.TypeError, dialback.ConditionRemoteConnectionFailed},
		{"authoritative server too slow", "b.example", func(ctx context.Context, _ string) (dialback.Verifier, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, false, dialback.TypeError, dialback.ConditionRemoteServerTimeout},
		{"answer about another stream", "b.example", func(context.Context, string) (dialback.Verifier, error) {
			return answerFunc(func(_ context.Context, v dialback.Element) (dialback.Element, error) {
				v.ID = "other"
				return v.Reply(dialback.TypeValid), nil
			}), nil
		}, false, dialback.TypeError, dialback.ConditionRemoteConnectionFailed},
		{"authoritative error passed on", "b.example", func(context.Context, string) (dialback.Verifier, error) {
			return answerFunc(func(_ context.Context, v dialback.Element) (dialback.Element, error) {
				return v.ReplyError(dialback.NewError(dialback.ConditionItemNotFound, "")), nil
			}), nil
		}, false, dialback.TypeError, dialback.ConditionItemNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := &dialback.Receiver{
				Hosts:    func(d string) bool { return d == tc.hosts },
				Dial:     tc.dial,
				Timeout:  100 * time.Millisecond,
				NoErrors: tc.noErrors,
				Logger:   slog.New(slog.DiscardHandler),
			}
			got := rc.Check(context.Background(), req, "S1")
			if !got.Answers(req) {
				t.Fatalf("Check = %+v, not an answer to %+v", got, req)
			}
			if got.Type != tc.wantType {
				t.Fatalf("Check type = %q, want %q", got.Type, tc.wantType)
			}
			if tc.wantCond != "" && (got.Err == nil || got.Err.Condition != tc.wantCond) {
				t.Errorf("Check error = %v, want %s", got.Err, tc.wantCond)
			}
		})
	}
}

func TestAuthorityAnswer(t *testing.T) {
	secret := []byte("secret of a.example")
	auth := &dialback.Authority{Secret: secret, Hosts: func(d string) bool { return d == "a.example" }}
	good := dialback.Key(secret, "b.example", "a.example", "S1")
	tests := []struct {
		name     string
		req      dialback.Element
		wantType dialback.Type
	}{
		{"our key", dialback.Element{Kind: dialback.Verify, From: "b.example", To: "a.example", ID: "S1", Key: good}, dialback.TypeValid},
		{"other stream", dialback.Element{Kind: dialback.Verify, From: "b.example", To: "a.example", ID: "S2", Key: good}, dialback.TypeInvalid},
		{"other receiving server", dialback.Element{Kind: dialback.Verify, From: "c.example", To: "a.example", ID: "S1", Key: good}, dialback.TypeInvalid},
		{"not our domain", dialback.Element{Kind: dialback.Verify, From: "b.example", To: "z.example", ID: "S1", Key: good}, dialback.TypeError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := auth.Answer(tc.req)
			if got.Type != tc.wantType || !got.Answers(tc.req) {
				t.Errorf("Answer = %+v, want type %q answering the request", got, tc.wantType)
			}
		})
	}
}
