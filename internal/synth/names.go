package synth

import "strings"

// Surnames with their rough frequency per thousand people in the delta;
// Jiangnan names (顾, 陆, 沈, 钱) are commoner here than nationally.
var surnameList = []struct {
	name string
	w    uint32
}{
	{"王", 70}, {"李", 55}, {"张", 60}, {"刘", 40}, {"陈", 55}, {"杨", 28}, {"黄", 22},
	{"赵", 20}, {"吴", 28}, {"周", 25}, {"徐", 30}, {"孙", 18}, {"马", 12}, {"朱", 20},
	{"胡", 15}, {"郭", 10}, {"何", 10}, {"高", 10}, {"林", 10}, {"罗", 8}, {"郑", 10},
	{"梁", 6}, {"谢", 8}, {"宋", 7}, {"唐", 8}, {"许", 10}, {"韩", 6}, {"冯", 7},
	{"邓", 5}, {"曹", 8}, {"彭", 5}, {"曾", 4}, {"蒋", 10}, {"沈", 12}, {"顾", 9},
	{"陆", 9}, {"钱", 6}, {"姚", 6}, {"金", 7}, {"汪", 8}, {"范", 5}, {"潘", 6},
}

var (
	surnames   [][]byte
	surnameCum []uint32
)

func init() {
	w := make([]uint32, len(surnameList))
	for i, s := range surnameList {
		surnames = append(surnames, []byte(s.name))
		w[i] = s.w
	}
	surnameCum = cumulative(w)
}

// Given names follow fashions: residents born before 1965 get names of
// their generation (建国, 秀英), younger ones are built from one or two
// characters of a modern list, by sex.
var (
	oldMale     = strings.Fields("建国 建华 国强 志强 德明 永福 国平 建军 卫东 振华 金根 阿福 明华 文彬 根宝 长生 国庆 跃进 新民 学军 福生 海生 宝根 志明 荣华 金宝 家驹 树林 兴华 解放")
	oldFemale   = strings.Fields("秀英 桂英 玉兰 凤英 淑珍 秀兰 桂兰 美华 丽华 玉珍 金凤 素珍 月英 彩英 雅琴 惠芳 桂芳 秀珍 美娟 玉梅 丽娟 秀芳 爱华 凤珍 巧英 翠华 菊英 美英 雪芳 慧珍")
	newMale     = []rune("伟强磊军杰涛斌鹏浩宇轩辰晨睿泽俊凯昊然博文明")
	newFemale   = []rune("芳娟敏静丽艳婷雪琳佳欣怡雨萱梓涵诗悦琪颖玲倩")
	oldGenLimit = dayNumber(1965, 1, 1)
)

func fillName(g *gen, v *Value) {
	r := rng{s: g.res.h ^ 0x4a3e}
	s := g.mark()
	g.buf = append(g.buf, surnames[pickHash(r.next(), surnameCum)]...)
	if g.res.birth < oldGenLimit {
		list := oldMale
		if g.res.female {
			list = oldFemale
		}
		g.buf = append(g.buf, list[r.intn(len(list))]...)
	} else {
		list := newMale
		if g.res.female {
			list = newFemale
		}
		g.buf = appendRune(g.buf, list[r.intn(len(list))])
		if r.chance(0.7) { // most modern names have two characters
			g.buf = appendRune(g.buf, list[r.intn(len(list))])
		}
	}
	g.done(v, s)
}

func appendRune(dst []byte, r rune) []byte { return append(dst, string(r)...) }

// fillAddress writes a registered address: district, road, number and, in
// most cases, building and flat, "浦东新区张杨路1288号7栋602室".
func fillAddress(g *gen, v *Value) {
	r := rng{s: g.res.h ^ 0xadd5}
	s := g.mark()
	g.buf = append(g.buf, g.w.districts[g.res.dist]...)
	g.buf = append(g.buf, g.w.roads[r.intn(len(g.w.roads))]...)
	g.buf = appendPadded(g.buf, uint64(1+r.intn(1999)), 1)
	g.buf = append(g.buf, "号"...)
	if r.chance(0.85) {
		g.buf = appendPadded(g.buf, uint64(1+r.intn(30)), 1)
		g.buf = append(g.buf, "栋"...)
		g.buf = appendPadded(g.buf, uint64(100*(1+r.intn(18))+1+r.intn(4)), 1)
		g.buf = append(g.buf, "室"...)
	}
	g.done(v, s)
}
