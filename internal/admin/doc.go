// Package admin is umppd's administration socket: a unix stream socket in
// the data directory (mode 0600, so only the daemon's user and root can
// use it) through which `umppd status`, `umppd sessions` and `umppd
// peers` ask the running daemon what it is doing.
//
// # Protocol
//
// One request per connection. The client writes one JSON object on one
// line, {"cmd":"status"}; the server answers with one JSON object on one
// line, {"status":{...}} (a Status) or {"error":"..."}, and closes. The
// commands are "status" (everything) and "ping" (an empty answer: the
// daemon is alive). Unknown commands get an error answer, so old clients
// and new daemons, or the reverse, fail clearly.
//
// A daemon that finds the socket file at start asks it for "ping": an
// answer means another umppd serves this data directory and it refuses
// to start; no answer means the file is left over from a crash and is
// removed.
package admin
