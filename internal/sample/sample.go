// Package sample is a small, realistic catalog for `yrdnode dev` and for
// tests. The datasets are metadata only (no rows) and pass
// catalogspec.Validate, so a dev cluster can be seeded with them as-is and
// tests of listing, filtering and access rules have every classification
// level, personal-information tag and cross-border case to work with.
package sample

import (
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// ElderlyPopulationSchemaID is the standard schema that Shanghai, Hangzhou
// and Nanjing share for their elderly population datasets, so one query can
// span all three.
const ElderlyPopulationSchemaID = "yrd.elderly-population.v1"

const (
	none      = yrdv1.PersonalInfo_PERSONAL_INFO_NONE
	personal  = yrdv1.PersonalInfo_PERSONAL_INFO_PERSONAL
	sensitive = yrdv1.PersonalInfo_PERSONAL_INFO_SENSITIVE

	noID   = yrdv1.IdentifierRole_IDENTIFIER_NONE
	direct = yrdv1.IdentifierRole_IDENTIFIER_DIRECT
	quasi  = yrdv1.IdentifierRole_IDENTIFIER_QUASI
)

func col(name, typ string, pi yrdv1.PersonalInfo, role yrdv1.IdentifierRole, desc string) *yrdv1.Column {
	return &yrdv1.Column{Name: name, Type: typ, PersonalInfo: pi, IdentifierRole: role, Description: desc}
}

// banded is c shown in rows as bands of width w.
func banded(c *yrdv1.Column, w float64) *yrdv1.Column {
	c.Generalise = &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_BandWidth{BandWidth: w}}
	return c
}

// truncated is c shown in rows as the start of its month or year.
func truncated(c *yrdv1.Column, t yrdv1.DateTruncation) *yrdv1.Column {
	c.Generalise = &yrdv1.Generalisation{Rule: &yrdv1.Generalisation_Truncate{Truncate: t}}
	return c
}

// withBound is c with the clamp bound of its noisy sums.
func withBound(c *yrdv1.Column, b float64) *yrdv1.Column {
	c.SumBound = b
	return c
}

func elderlyColumns() []*yrdv1.Column {
	return []*yrdv1.Column{
		col("person_id", "VARCHAR", personal, direct, "Resident identifier assigned by the city's civil affairs system."),
		col("district", "VARCHAR", none, noID, "District (区/县) of registered residence."),
		withBound(banded(col("age", "INTEGER", personal, quasi, "Age in whole years at the snapshot date; rows show 5-year bands."), 5), 120),
		col("gender", "VARCHAR", personal, quasi, "M or F."),
		col("living_alone", "BOOLEAN", personal, noID, "Lives without another household member (空巢/独居)."),
		withBound(col("care_level", "INTEGER", sensitive, noID, "Assessed long-term care level, 0 (none) to 6; health-derived."), 6),
	}
}

func elderly(city, cityZh, cityEn, org, holder, ref string) *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:        city + ".civil-affairs.elderly-population",
		OwnerCity: city,
		OwnerOrg:  org,
		Title:     cityZh + "老年人口 " + cityEn + " elderly population",
		Description: "Residents aged 60 and over, one row per person, by district, " +
			"with living situation and assessed care level. Used to plan elderly care " +
			"services across the delta.\n按区统计的60岁及以上户籍老年人口。",
		Tags:             []string{"养老", "elderly-care", "population"},
		Sector:           "civil-affairs",
		Level:            yrdv1.ClassificationLevel_LEVEL_GENERAL,
		Schema:           &yrdv1.Schema{Columns: elderlyColumns()},
		StandardSchemaId: ElderlyPopulationSchemaID,
		UpdateFrequency:  "monthly",
		DataRights: &yrdv1.DataRights{
			Holder:             holder,
			ProcessingUseRight: true,
			RegistrationRef:    ref,
		},
		PermittedPurposes: []string{"elderly-care-planning", "public-service-research"},
	}
}

// Datasets returns the sample catalog, ordered by id. Each call returns
// fresh copies, so callers may modify them.
func Datasets() []*yrdv1.Dataset {
	return []*yrdv1.Dataset{
		elderly("hangzhou", "杭州市", "Hangzhou", "hz-civil-affairs",
			"杭州市民政局 Hangzhou Civil Affairs Bureau", "ZJDE-2024-HZ-0117"),
		hangzhouEnterpriseCredit(),
		elderly("nanjing", "南京市", "Nanjing", "nj-civil-affairs",
			"南京市民政局 Nanjing Civil Affairs Bureau", "JSDE-2024-NJ-0088"),
		nanjingHospitalVisits(),
		nanjingTrafficFlow(),
		elderly("shanghai", "上海市", "Shanghai", "sh-civil-affairs",
			"上海市民政局 Shanghai Civil Affairs Bureau", "SHDE-2024-000123"),
		lingangTrips(),
		householdRegistry(),
	}
}

// hangzhouEnterpriseCredit is enterprises' credit ratings: general data, no
// natural persons.
func hangzhouEnterpriseCredit() *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:        "hangzhou.fintech.enterprise-credit",
		OwnerCity: "hangzhou",
		OwnerOrg:  "hz-big-data-bureau",
		Title:     "杭州市企业信用评价 Hangzhou enterprise credit ratings",
		Description: "Public credit evaluation of enterprises registered in Hangzhou, " +
			"combining tax, social insurance and utility payment records. " +
			"Enterprises only; no natural persons.",
		Tags:   []string{"企业信用", "credit", "sme-finance"},
		Sector: "fintech",
		Level:  yrdv1.ClassificationLevel_LEVEL_GENERAL,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			col("credit_code", "VARCHAR", none, noID, "Unified social credit code (统一社会信用代码) of the enterprise."),
			col("enterprise_name", "VARCHAR", none, noID, "Registered name."),
			col("industry_code", "VARCHAR", none, noID, "GB/T 4754 industry class."),
			col("registered_capital", "DECIMAL", none, noID, "Registered capital in CNY 10,000."),
			col("credit_score", "INTEGER", none, noID, "Score 0–1000."),
			col("rating", "VARCHAR", none, noID, "A, B, C or D."),
			col("rated_on", "DATE", none, noID, "Date of the evaluation."),
		}},
		UpdateFrequency: "monthly",
		DataRights: &yrdv1.DataRights{
			Holder:                "杭州市数据资源管理局 Hangzhou Data Resources Bureau",
			ProcessingUseRight:    true,
			ProductOperationRight: true,
			RegistrationRef:       "ZJDE-2024-HZ-0342",
		},
		PermittedPurposes: []string{"credit-assessment", "sme-lending"},
	}
}

// nanjingHospitalVisits is outpatient visits: important data with sensitive
// columns, answered only in aggregate under a grant.
func nanjingHospitalVisits() *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:        "nanjing.health.hospital-visits",
		OwnerCity: "nanjing",
		OwnerOrg:  "nj-health-commission",
		Title:     "南京市医院门诊就诊记录 Nanjing hospital outpatient visits",
		Description: "Outpatient visits at Nanjing's public hospitals with ICD-10 diagnosis. " +
			"Important data: only aggregate results leave the owner, under an approved grant.",
		Tags:   []string{"医疗", "health", "outpatient"},
		Sector: "health",
		Level:  yrdv1.ClassificationLevel_LEVEL_IMPORTANT,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			col("visit_id", "VARCHAR", none, noID, "Random identifier of the visit."),
			col("patient_id", "VARCHAR", sensitive, direct, "Medical record number of the patient."),
			col("hospital_code", "VARCHAR", none, noID, "Health commission code of the hospital."),
			col("department", "VARCHAR", none, noID, "Clinical department."),
			col("visit_date", "DATE", sensitive, quasi, "Date of the visit."),
			withBound(banded(col("age", "INTEGER", personal, quasi, "Patient age in whole years."), 10), 120),
			col("gender", "VARCHAR", personal, quasi, "M or F."),
			col("diagnosis", "VARCHAR", sensitive, noID, "Primary ICD-10 diagnosis code."),
			withBound(col("cost", "DECIMAL", sensitive, noID, "Total cost of the visit in CNY; noisy sums clamp it at 20,000."), 20000),
		}},
		UpdateFrequency: "daily",
		DataRights: &yrdv1.DataRights{
			Holder:             "南京市卫生健康委员会 Nanjing Municipal Health Commission",
			ProcessingUseRight: true,
		},
		PermittedPurposes: []string{"public-health-research", "health-service-planning"},
	}
}

// nanjingTrafficFlow is traffic counts per road segment: general data with
// no personal information.
func nanjingTrafficFlow() *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:        "nanjing.transport.road-traffic-flow",
		OwnerCity: "nanjing",
		OwnerOrg:  "nj-transport",
		Title:     "南京市路段交通流量 Nanjing traffic flow per road segment",
		Description: "Vehicle counts and average speeds per road segment in 5-minute " +
			"intervals, from loop detectors and cameras. Counts only; no plates.",
		Tags:   []string{"交通", "traffic", "road-network"},
		Sector: "transport",
		Level:  yrdv1.ClassificationLevel_LEVEL_GENERAL,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			col("segment_id", "VARCHAR", none, noID, "Road segment identifier in the city road network."),
			col("road_name", "VARCHAR", none, noID, "Name of the road."),
			col("interval_start", "TIMESTAMP", none, noID, "Start of the 5-minute interval, Asia/Shanghai."),
			col("vehicle_count", "INTEGER", none, noID, "Vehicles counted in the interval."),
			col("avg_speed_kmh", "DOUBLE", none, noID, "Average speed in km/h."),
			col("occupancy", "DOUBLE", none, noID, "Share of time the detector was occupied, 0–1."),
		}},
		UpdateFrequency: "realtime",
		DataRights: &yrdv1.DataRights{
			Holder:                "南京市交通运输局 Nanjing Transport Bureau",
			ProcessingUseRight:    true,
			ProductOperationRight: true,
			RegistrationRef:       "JSDE-2024-NJ-0131",
		},
		PermittedPurposes: []string{"traffic-management", "urban-planning-research"},
	}
}

// lingangTrips is connected-car trips: general data eligible for the
// cross-border trial.
func lingangTrips() *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:        "shanghai.connected-vehicles.lingang-trips",
		OwnerCity: "shanghai",
		OwnerOrg:  "lingang-ica",
		Title:     "临港智能网联汽车行程 Lingang connected-car trips",
		Description: "Trips of connected test vehicles in the Lingang Special Area, with " +
			"start and end on a 1 km grid. Vehicle ids are pseudonymous and rotated " +
			"monthly. Eligible for Lingang's low-risk cross-border data trial.",
		Tags:   []string{"临港", "connected-vehicles", "mobility"},
		Sector: "connected-vehicles",
		Level:  yrdv1.ClassificationLevel_LEVEL_GENERAL,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			col("trip_id", "VARCHAR", none, noID, "Random identifier of the trip."),
			col("vehicle_id", "VARCHAR", personal, direct, "Pseudonymous vehicle id, rotated monthly; one vehicle is one individual (its keeper)."),
			truncated(col("start_hour", "TIMESTAMP", personal, quasi, "Trip start, truncated to the hour; rows show the month."), yrdv1.DateTruncation_DATE_TRUNCATION_MONTH),
			col("start_grid", "VARCHAR", personal, quasi, "1 km grid cell of the trip start."),
			col("end_grid", "VARCHAR", personal, quasi, "1 km grid cell of the trip end."),
			withBound(col("distance_km", "DOUBLE", none, noID, "Distance driven; noisy sums clamp it at 500."), 500),
			col("duration_s", "INTEGER", none, noID, "Duration in seconds."),
			col("autonomous_share", "DOUBLE", none, noID, "Share of the distance driven autonomously, 0–1."),
		}},
		UpdateFrequency: "daily",
		DataRights: &yrdv1.DataRights{
			Holder:                "上海临港智能网联汽车研究中心 Lingang Intelligent Connected Vehicle Center",
			ProcessingUseRight:    true,
			ProductOperationRight: true,
			RegistrationRef:       "SHDE-2024-000457",
		},
		PermittedPurposes:   []string{"autonomous-driving-research", "traffic-safety-analysis"},
		CrossBorderEligible: true,
	}
}

// householdRegistry is the household registry: core data, listed but never
// answered.
func householdRegistry() *yrdv1.Dataset {
	return &yrdv1.Dataset{
		Id:        "shanghai.public-security.household-registry",
		OwnerCity: "shanghai",
		OwnerOrg:  "sh-public-security",
		Title:     "上海市户籍人口登记 Shanghai household registry",
		Description: "Registered permanent residents (户籍). Core data: listed so that other " +
			"cities know it exists; no query result ever leaves the owner.",
		Tags:   []string{"户籍", "population", "registry"},
		Sector: "public-security",
		Level:  yrdv1.ClassificationLevel_LEVEL_CORE,
		Schema: &yrdv1.Schema{Columns: []*yrdv1.Column{
			col("citizen_id", "VARCHAR", sensitive, direct, "Resident identity card number."),
			col("name", "VARCHAR", personal, direct, "Full name."),
			truncated(col("birth_date", "DATE", personal, quasi, "Date of birth."), yrdv1.DateTruncation_DATE_TRUNCATION_YEAR),
			col("gender", "VARCHAR", personal, quasi, "M or F."),
			col("address", "VARCHAR", personal, quasi, "Registered household address."),
			col("district", "VARCHAR", none, noID, "District of registration."),
			col("registered_on", "DATE", personal, noID, "Date of registration in Shanghai."),
		}},
		UpdateFrequency: "daily",
		DataRights: &yrdv1.DataRights{
			Holder:             "上海市公安局 Shanghai Public Security Bureau",
			ProcessingUseRight: true,
		},
		PermittedPurposes: []string{"population-statistics"},
	}
}
