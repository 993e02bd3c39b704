//go:build !race

package esl

const raceDetector = false
