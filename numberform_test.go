package synchro

import "testing"

func TestAppendWideNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0": "0", "-0": "-0", "42": "42", "2.5": "2.5", "-3.25e-7": "-3.25e-7",
		"1e-05": "1.0e-05", "1E+20": "1.0E+20", "-1e400": "-1.0e400",
		"9223372036854775807": "9223372036854775807", "9223372036854775808": "9223372036854775808.0",
		"-9223372036854775808": "-9223372036854775808", "-9223372036854775809": "-9223372036854775809.0",
		"123456789012345678901234": "123456789012345678901234.0", "1000000000000000000": "1000000000000000000",
	} {
		if got := string(appendWideNumber([]byte("x"), []byte(in))); got != "x"+want {
			t.Errorf("appendWideNumber(%s) = %s, want %s", in, got[1:], want)
		}
	}
}

func TestWidenNumbers(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":1,"b":"1e-05"}`:                                `{"a":1,"b":"1e-05"}`,
		`{"a":1e-05,"b":2}`:                                  `{"a":1.0e-05,"b":2}`,
		`{"1e5":1e5, "s":"\"1e5\\", "n":-1E+20}`:             `{"1e5":1.0e5, "s":"\"1e5\\", "n":-1.0E+20}`,
		`{"j":{"x":1e-05,"y":[1e20]},"k":[1e-05],"z":1e3}`:   `{"j":{"x":1e-05,"y":[1e20]},"k":[1e-05],"z":1.0e3}`,
		`{"big":123456789012345678901234,"t":true,"u":null}`: `{"big":123456789012345678901234.0,"t":true,"u":null}`,
		`{}`: `{}`,
		`{"s":"[1e5]","arr":[1e-05,[2,1e20]],"k":[1e-05]}`: `{"s":"[1e5]","arr":[1.0e-05,[2,1.0e20]],"k":[1e-05]}`,
		`{"arr":null,"x":1e1}`:                             `{"arr":null,"x":1.0e1}`,
	} {
		if got := string(widenNumbers([]byte(in), map[string]bool{`"arr"`: true})); got != want {
			t.Errorf("widenNumbers(%s) = %s, want %s", in, got, want)
		}
	}
	same := []byte(`{"a":1,"b":[1e-05]}`)
	if got := widenNumbers(same, nil); &got[0] != &same[0] {
		t.Error("widenNumbers copied an object that needed no change")
	}
}
