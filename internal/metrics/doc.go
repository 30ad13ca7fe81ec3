// Package metrics is umppd's Prometheus instrumentation: the umpp_*
// metrics of one daemon on a registry of its own (never the process-wide
// default), the recorder methods the protocol sides call on their hot
// paths, collectors that read live counts (streams, registrations,
// subscriptions) from snapshots at scrape time, a store.Store wrapper
// that times every store call, and the HTTP endpoint serving /metrics,
// /healthz and /readyz.
//
// Every recorder method is safe on a nil *Metrics, so a part built
// without metrics (tests, metrics disabled) records nothing and pays one
// nil check. Label values are bounded: unknown SIP methods, status codes
// and error conditions are recorded as "other", so a peer cannot make
// the series count grow.
//
// # Metrics
//
//	umpp_c2s_connections                      gauge   client TCP connections, negotiating or bound
//	umpp_c2s_streams{domain}                  gauge   bound client streams by hosted domain
//	umpp_s2s_streams{domain,direction}        gauge   server-to-server streams by peer domain, "in"/"out"
//	umpp_sip_registrations                    gauge   registered SIP contacts (bindings)
//	umpp_presence_subscriptions{direction}    gauge   active presence subscriptions, "in"/"out"
//	umpp_presence_subscriptions_started_total{direction} counter
//	umpp_sip_transactions_total{method,status} counter server transactions answered (final status)
//	umpp_im_sessions_active                   gauge   UMPP IM sessions (INVITE im: dialogs) open
//	umpp_im_sessions_started_total            counter
//	umpp_im_sessions_ended_total{reason}      counter
//	umpp_messages_routed_total{path}          counter path: xmpp->xmpp, xmpp->sip, sip->xmpp, sip->sip
//	umpp_delivery_failures_total{condition}   counter RFC 6120 §8.3.3 stanza error condition
//	umpp_store_duration_seconds{op}           histogram store call latency by operation
//	umpp_build_info{version}                  gauge   always 1
//
// plus the Go runtime (go_*) and process (process_*) collectors.
//
// It implements no protocol. cmd/umppd builds one Metrics per daemon;
// the protocol sides should take the recorder through small interfaces of
// their own (the methods they call), which *Metrics satisfies.
package metrics
