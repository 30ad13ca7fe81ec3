// Package config loads and validates umppd's TOML configuration.
//
// [Load] reads a file, fills in every key it leaves out from the embedded
// default (default.toml, also what [Default] returns) and checks
// everything at once; the error is a [Problems] with one
// "FILE:LINE: key: what is wrong" line per problem, so an operator fixes a
// file in one pass. umppd.example.toml documents every key; [Keys] lists
// them, and tests keep the two and the Config struct in step.
//
// [Reloadable] tells SIGHUP handling which changed keys apply live and
// which need a restart.
//
// The key names are an operator contract: add keys, never rename them.
// The file format is TOML 1.0, parsed by github.com/pelletier/go-toml/v2
// (its AST parser gives the line of every key).
package config
