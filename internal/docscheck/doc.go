// Package docscheck holds the tests that keep the operator documentation
// in docs/ in step with the code: the configuration reference lists
// exactly the keys package config knows, with the embedded defaults, and
// its TOML examples use only known keys. It has no code of its own.
package docscheck
