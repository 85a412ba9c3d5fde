// Package controller holds the reconcilers: one file per kind, shared helpers beside them.
package controller
