package synth

import (
	"strconv"

	"github.com/yrd-exchange/yrdnode/internal/cities"
)

// cityCodes are the first four digits of each city's GB/T 2260
// administrative division code. They prefix person ids (so that no two
// cities can share one), district codes in identity card numbers, and the
// region part of unified social credit codes.
var cityCodes = map[string]string{
	"shanghai": "3101", "nanjing": "3201", "wuxi": "3202", "xuzhou": "3203",
	"changzhou": "3204", "suzhou-js": "3205", "nantong": "3206", "lianyungang": "3207",
	"huaian": "3208", "yancheng": "3209", "yangzhou": "3210", "zhenjiang": "3211",
	"taizhou-js": "3212", "suqian": "3213", "hangzhou": "3301", "ningbo": "3302",
	"wenzhou": "3303", "jiaxing": "3304", "huzhou": "3305", "shaoxing": "3306",
	"jinhua": "3307", "quzhou": "3308", "zhoushan": "3309", "taizhou-zj": "3310",
	"lishui": "3311", "hefei": "3401", "wuhu": "3402", "bengbu": "3403",
	"huainan": "3404", "maanshan": "3405", "huaibei": "3406", "tongling": "3407",
	"anqing": "3408", "huangshan": "3410", "chuzhou": "3411", "fuyang": "3412",
	"suzhou-ah": "3413", "luan": "3415", "bozhou": "3416", "chizhou": "3417",
	"xuancheng": "3418",
}

// districtSpec is a district (区/县/县级市): its name, six-digit division
// code and resident population in 10,000s (2020 census, rounded), which
// weights how many generated residents live there.
type districtSpec struct {
	name string
	code string
	pop  uint32
}

// knownDistricts are the real districts of the three cities with sample
// datasets; every other city gets numbered placeholders.
var knownDistricts = map[string][]districtSpec{
	"shanghai": {
		{"黄浦区", "310101", 66}, {"徐汇区", "310104", 111}, {"长宁区", "310105", 69},
		{"静安区", "310106", 98}, {"普陀区", "310107", 124}, {"虹口区", "310109", 76},
		{"杨浦区", "310110", 124}, {"闵行区", "310112", 265}, {"宝山区", "310113", 223},
		{"嘉定区", "310114", 183}, {"浦东新区", "310115", 568}, {"金山区", "310116", 82},
		{"松江区", "310117", 191}, {"青浦区", "310118", 127}, {"奉贤区", "310120", 114},
		{"崇明区", "310151", 64},
	},
	"nanjing": {
		{"玄武区", "320102", 54}, {"秦淮区", "320104", 74}, {"建邺区", "320105", 53},
		{"鼓楼区", "320106", 94}, {"浦口区", "320111", 117}, {"栖霞区", "320113", 99},
		{"雨花台区", "320114", 61}, {"江宁区", "320115", 193}, {"六合区", "320116", 95},
		{"溧水区", "320117", 49}, {"高淳区", "320118", 43},
	},
	"hangzhou": {
		{"上城区", "330102", 132}, {"拱墅区", "330105", 112}, {"西湖区", "330106", 111},
		{"滨江区", "330108", 50}, {"萧山区", "330109", 201}, {"余杭区", "330110", 123},
		{"富阳区", "330111", 83}, {"临安区", "330112", 64}, {"临平区", "330113", 117},
		{"钱塘区", "330114", 77}, {"桐庐县", "330122", 45}, {"淳安县", "330127", 33},
		{"建德市", "330182", 44},
	},
}

// knownRoads are real road names, for road segments, addresses and
// enterprise locations; other cities use genericRoads, names that most
// Chinese cities have.
var knownRoads = map[string][]string{
	"shanghai": {"南京东路", "南京西路", "淮海中路", "延安中路", "延安西路", "世纪大道", "张杨路",
		"浦东南路", "中山北路", "中山南路", "四川北路", "衡山路", "漕溪北路", "沪闵路", "共和新路",
		"曹杨路", "长寿路", "江宁路", "大连路", "四平路", "杨高中路", "龙阳路", "虹桥路", "天山路",
		"金沙江路", "武宁路", "宜山路", "漕宝路", "沪南公路", "嘉松北路"},
	"nanjing": {"中山路", "中山北路", "中山南路", "中山东路", "北京东路", "北京西路", "汉中路",
		"龙蟠中路", "虎踞路", "江东中路", "应天大街", "集庆门大街", "草场门大街", "广州路", "汉口路",
		"太平北路", "珠江路", "模范马路", "卡子门大街", "双龙大道", "天元中路", "宁丹路", "浦珠路",
		"雄州南路"},
	"hangzhou": {"延安路", "中河中路", "环城北路", "文三路", "文二路", "天目山路", "莫干山路",
		"体育场路", "庆春路", "解放路", "秋涛路", "之江路", "江南大道", "滨盛路", "文一西路",
		"余杭塘路", "西溪路", "留和路", "市心中路", "金城路", "临平大道", "学林街"},
}

var genericRoads = []string{"人民路", "解放路", "中山路", "建设路", "和平路", "长江路", "新华路",
	"文化路", "胜利路", "光明路", "青年路", "环城东路", "环城西路", "东风路", "健康路", "朝阳路",
	"工业大道", "迎宾大道", "滨江路", "学府路", "振兴路", "开发大道"}

// place is the static, seed-independent description of a city.
type place struct {
	id        string
	nameZh    string // 上海, or the id for a city outside the delta list
	code      string // four digits, or "X" and three hex digits outside the list
	districts [][]byte
	distCodes []string
	distCum   []uint32
	roads     [][]byte
}

func newPlace(id string) *place {
	p := &place{id: id, nameZh: id, code: cityCodes[id]}
	if c, ok := cities.Lookup(id); ok {
		p.nameZh = c.NameZh
	}
	if p.code == "" {
		// Not a delta city: a hashed code keeps its person ids apart from
		// every delta city's, whose codes are all digits.
		h := hashString(id)
		p.code = "X" + string([]byte{hexDigits[h>>60], hexDigits[h>>56&0xf], hexDigits[h>>52&0xf]})
	}
	specs := knownDistricts[id]
	if specs == nil {
		// Cities without a district list get numbered districts; how many
		// varies by city so that per-district aggregates differ in shape.
		n := 6 + int(hashString(id)%7)
		for i := 1; i <= n; i++ {
			specs = append(specs, districtSpec{
				name: id + "-district-" + strconv.Itoa(i),
				code: p.code + string(append2(nil, i%100)),
				pop:  uint32(40 + hashString(id+strconv.Itoa(i))%120),
			})
		}
	}
	weights := make([]uint32, len(specs))
	for i, s := range specs {
		p.districts = append(p.districts, []byte(s.name))
		p.distCodes = append(p.distCodes, s.code)
		weights[i] = s.pop
	}
	p.distCum = cumulative(weights)
	roads := knownRoads[id]
	if roads == nil {
		roads = genericRoads
	}
	for _, r := range roads {
		p.roads = append(p.roads, []byte(r))
	}
	return p
}

// Districts returns the districts generated for a city's residents, in a
// fixed order: the real districts of Shanghai, Hangzhou and Nanjing, and
// "<city>-district-N" for any other city.
func Districts(city string) []string {
	p := newPlace(city)
	out := make([]string, len(p.districts))
	for i, d := range p.districts {
		out[i] = string(d)
	}
	return out
}
