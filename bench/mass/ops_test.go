package mass

import (
	"context"
	"fmt"
	"testing"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// operation is what task i's replacement allocation does at start: bind
// its EIP to its host (taking it over from the old allocation's host), or
// register its host and port with the VServer (releasing the old
// allocation's backend). The binders get the driver's defaults but for the
// scenario's retry policy.
func (w *World) operation(i int, api *ucloudapi.Client, logger hclog.Logger) func(context.Context) error {
	var eipAPI eipbind.API = api
	var ulbAPI ulbbind.API = api
	switch w.s.Kind {
	case "eip":
		b := eipbind.New(eipAPI, w.store, eipbind.Guard{}, eipbind.Options{Logger: logger, Retry: w.s.Policy})
		req := eipbind.Request{EIPID: eipID(i), UHostID: newHost(i), Owner: owner(w.s, i, newAlloc(i), newHost(i))}
		return func(ctx context.Context) error {
			_, err := b.Bind(ctx, req)
			return err
		}
	default:
		b := ulbbind.New(ulbAPI, w.store, ulbbind.Guard{}, ulbbind.Options{Logger: logger, Retry: w.s.Policy})
		req := w.backendRequest(i)
		return func(ctx context.Context) error {
			_, err := b.Register(ctx, req)
			return err
		}
	}
}

func (w *World) backendRequest(i int) ulbbind.Request {
	return ulbbind.Request{ULBID: ulbID(i), VServerID: vsID(i), UHostID: newHost(i), Port: newPort,
		Owner: owner(w.s, i, newAlloc(i), newHost(i))}
}

// backendKey is the owner record key of task i's slot.
func (w *World) backendKey(i int) string { return ulbbind.RecordKey(w.backendRequest(i)) }

// Verify lists what is not as it must be once every task has moved: each
// EIP bound to its new host, or each slot's only backend on the new host and
// port; each owner record naming the new allocation and host.
func (w *World) Verify(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	snap := w.sim.Snapshot()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	backends := map[string]map[string]string{} // vserver -> "uhost:port" -> id
	for _, lb := range snap.ULBs {
		for _, vs := range lb.VServers {
			backends[vs.ID] = map[string]string{}
			for _, b := range vs.Backends {
				backends[vs.ID][fmt.Sprintf("%s:%d", b.ResourceID, b.Port)] = b.ID
			}
		}
	}
	for i := range w.s.Tasks {
		kind, key, resource := ownership.KindEIP, eipID(i), eipID(i)
		switch w.s.Kind {
		case "eip":
			e, ok := snap.EIP(eipID(i))
			if !ok || e.ResourceID != newHost(i) {
				bad("%s is bound to %q, want %s", eipID(i), e.ResourceID, newHost(i))
			}
		default:
			vs := backends[vsID(i)]
			if id, ok := vs[fmt.Sprintf("%s:%d", host(i), oldPort)]; ok {
				bad("task %d: the old backend %s (%s:%d) is still in %s", i, id, host(i), oldPort, vsID(i))
			}
			resource = vs[fmt.Sprintf("%s:%d", newHost(i), newPort)]
			if resource == "" {
				bad("task %d: no backend for %s:%d in %s", i, newHost(i), newPort, vsID(i))
			}
			kind, key = ownership.KindBackend, w.backendKey(i)
		}
		rec, _, err := w.store.Get(ctx, kind, key)
		switch {
		case err != nil:
			bad("owner record %s: %v", key, err)
		case rec == nil:
			bad("owner record %s: none", key)
		case rec.AllocID != newAlloc(i) || rec.UHostID != newHost(i) || rec.Resource != resource:
			bad("owner record %s names allocation %s on %s for %q, want %s on %s for %q",
				key, rec.AllocID, rec.UHostID, rec.Resource, newAlloc(i), newHost(i), resource)
		}
	}
	if w.s.Kind == "ulb" {
		for k := range min(ULBs, w.s.Tasks) {
			want := (w.s.Tasks - k + ULBs - 1) / ULBs
			if got := len(backends[vsID(k)]); got != want {
				bad("%s has %d backends, want %d", vsID(k), got, want)
			}
		}
	}
	return problems
}
