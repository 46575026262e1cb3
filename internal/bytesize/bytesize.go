package bytesize

import "fmt"

// Format writes n in binary units with one decimal ("2.3 GiB"), and below
// 1 KiB in whole bytes ("512 B"). It takes both signs of integer because
// replay counts sizes in int64 and replay/socket in uint64.
func Format[N int64 | uint64](n N) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
