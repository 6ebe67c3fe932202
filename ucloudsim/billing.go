package ucloudsim

import "time"

// UCloud bills in China Standard Time (UTC+8): a month bought on the 31st
// of January ends on the last day of February, a month bought with
// Quantity 0 ends at the next month's start, both in that zone.
func billingZone() *time.Location { return time.FixedZone("UTC+8", 8*3600) }

// expireTime is when a resource bought at created for quantity units of
// chargeType expires: Month adds months (0: to the end of the current month,
// "月付时，此参数传0，代表购买至月末", as UCloud documents for UHost), Year
// adds years, Dynamic (billed by the hour) never expires and gives 0.
func expireTime(created time.Time, chargeType string, quantity int) int64 {
	t := created.In(billingZone())
	switch chargeType {
	case "Dynamic":
		return 0
	case "Year":
		return addMonths(t, 12*quantity).Unix()
	default:
		if quantity == 0 {
			y, m, _ := t.Date()
			return time.Date(y, m+1, 1, 0, 0, 0, 0, t.Location()).Unix()
		}
		return addMonths(t, quantity).Unix()
	}
}

// addMonths adds n calendar months, keeping the day of the month when the
// target month has it and taking its last day when not (Jan 31 + 1 month =
// Feb 28 or 29, not Go's Mar 3).
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// currentPeriodEnd is the expire time of a resource created at created and
// renewed one unit (month or year) at a time: the first period end after
// now, and at least one period after created. 0 for Dynamic.
func currentPeriodEnd(created time.Time, chargeType string, now time.Time) int64 {
	if chargeType == "Dynamic" {
		return 0
	}
	for n := 1; ; n++ {
		if end := expireTime(created, chargeType, n); end > now.Unix() || n >= 12*1000 {
			return end
		}
	}
}
