//go:build race

package esl

const raceDetector = true
