// Package actionurl sends Snom "action URLs": the HTTP GETs a Snom desk phone issues on call events, with
// $variables substituted. The bridge impersonates the phone, so it expands the templates the same way
// (Expand), keeps secrets out of logs (Redact) and delivers the GETs in per-extension order through a
// bounded, non-blocking queue (Notifier).
package actionurl
