// Package archtest holds tests that guard the dependency direction between
// the project's packages. It has no code of its own.
package archtest
