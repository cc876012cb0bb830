package synth

import (
	"math"
	"strings"
)

// industry is a GB/T 4754-2017 industry class, with the word an
// enterprise of that class puts in its name and how heavy it is (median
// registered capital in CNY 10,000, how common).
type industry struct {
	code, word []byte
	capital    float64
	w          uint32
}

func ind(code, word string, capital float64, w uint32) industry {
	return industry{[]byte(code), []byte(word), capital, w}
}

var industries = []industry{
	ind("I6513", "网络科技", 100, 16), ind("I6531", "信息技术", 200, 10),
	ind("F5292", "电子商务", 100, 14), ind("F5181", "贸易", 300, 12),
	ind("E4790", "建设工程", 1000, 6), ind("H6210", "餐饮管理", 50, 8),
	ind("C2720", "生物医药", 2000, 4), ind("C3670", "汽车零部件", 1500, 5),
	ind("C1711", "纺织", 500, 5), ind("G5810", "供应链管理", 500, 6),
	ind("L7212", "投资管理", 3000, 5), ind("M7320", "智能科技", 300, 9),
}

var industryCum = func() []uint32 {
	w := make([]uint32, len(industries))
	for i, in := range industries {
		w[i] = in.w
	}
	return cumulative(w)
}()

// Trade names (字号) are two characters from a list of auspicious ones.
var tradeChars = []rune("华信达恒瑞泰鑫源海天宏远博创润盛嘉禾中正新锐凯越优联云启智汇德通")

type enterpriseState struct {
	ind   int
	dist  int
	score int
	cap   float64
}

func (g *gen) beginEnterprise() {
	s := &g.ent
	s.ind = g.r.pick(industryCum)
	s.dist = g.r.pick(g.w.distCum)
	in := &industries[s.ind]
	s.cap = min(max(g.r.lognormal(in.capital, 1.3), 1), 5e6)
	// Scores centre on 700; bigger firms score a little higher.
	s.score = min(max(int(math.Round(690+95*g.r.normal()+12*math.Log10(s.cap))), 0), 1000)
}

// usccChars is the alphabet of unified social credit codes (GB 32100):
// digits and capitals without I, O, Z, S and V.
const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}
var orgWeights = [8]int{3, 7, 9, 10, 5, 8, 4, 2}

// orgBodies is how many distinct organisation code bodies "MA" + six
// characters can make; enterprise i gets a permutation of i below it, so
// codes are unique within a city.
const orgBodies = 31 * 31 * 31 * 31 * 31 * 31

// fillCreditCode writes an 18-character unified social credit code:
// registration authority 9 (market regulation), category 1 (enterprise),
// the district's division code, a GB 11714 organisation code with its
// check character, and the GB 32100 check character.
func fillCreditCode(g *gen, v *Value) {
	s := g.mark()
	g.buf = append(g.buf, '9', '1')
	g.buf = append(g.buf, g.w.distCodes[g.ent.dist]...)
	body := permute(g.i%orgBodies, orgBodies, derive(g.w.seed, 0xc0de))
	org := len(g.buf)
	g.buf = append(g.buf, 'M', 'A', 0, 0, 0, 0, 0, 0)
	for i := 7; i >= 2; i-- {
		g.buf[org+i] = usccChars[body%31]
		body /= 31
	}
	g.buf = append(g.buf, orgCheck(g.buf[org:org+8]))
	g.buf = append(g.buf, usccCheck(g.buf[s:s+17]))
	g.done(v, s)
}

// orgCheck is the GB 11714 check character of an 8-character organisation
// code body.
func orgCheck(b []byte) byte {
	sum := 0
	for i, c := range b[:8] {
		sum += orgValue(c) * orgWeights[i]
	}
	switch c := 11 - sum%11; c {
	case 10:
		return 'X'
	case 11:
		return '0'
	default:
		return byte('0' + c)
	}
}

// usccCheck is the GB 32100 check character of the first 17 characters of
// a unified social credit code.
func usccCheck(b []byte) byte {
	sum := 0
	for i, c := range b[:17] {
		sum += max(strings.IndexByte(usccChars, c), 0) * usccWeights[i]
	}
	return usccChars[(31-sum%31)%31]
}

// orgValue is a character's value in GB 11714: digits as themselves,
// letters A=10 … Z=35.
func orgValue(c byte) int {
	if c >= 'A' && c <= 'Z' {
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// fillEnterpriseName writes "杭州" + trade name + industry word + legal
// form, e.g. "杭州恒瑞网络科技有限公司".
func fillEnterpriseName(g *gen, v *Value) {
	r := rng{s: derive(g.seed, g.i^0x4e41e)}
	s := g.mark()
	g.buf = append(g.buf, g.w.nameZh...)
	g.buf = appendRune(g.buf, tradeChars[r.intn(len(tradeChars))])
	g.buf = appendRune(g.buf, tradeChars[r.intn(len(tradeChars))])
	g.buf = append(g.buf, industries[g.ent.ind].word...)
	if g.ent.cap > 5000 && r.chance(0.5) {
		g.buf = append(g.buf, "股份有限公司"...)
	} else {
		g.buf = append(g.buf, "有限公司"...)
	}
	g.done(v, s)
}

func fillIndustryCode(g *gen, v *Value) { setStr(v, industries[g.ent.ind].code) }
func fillCapital(g *gen, v *Value)      { setDec(v, g.ent.cap, 2) }
func fillCreditScore(g *gen, v *Value)  { setInt(v, int64(g.ent.score)) }

var ratings = [4][]byte{[]byte("A"), []byte("B"), []byte("C"), []byte("D")}

// Ratings are bands of the score: A from 800, B from 650, C from 500.
func fillRating(g *gen, v *Value) {
	switch sc := g.ent.score; {
	case sc >= 800:
		setStr(v, ratings[0])
	case sc >= 650:
		setStr(v, ratings[1])
	case sc >= 500:
		setStr(v, ratings[2])
	default:
		setStr(v, ratings[3])
	}
}

// Ratings are monthly, so an enterprise's evaluation is within the year.
func fillRatedOn(g *gen, v *Value) {
	r := rng{s: derive(g.seed, g.i^0xda7e)}
	setDate(v, snapshot-int64(r.intn(365)))
}
