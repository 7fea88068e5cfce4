package siem

import (
	"fmt"

	"github.com/custody/custody/domain"
)

// OCSFVersion is the OCSF schema version the payloads follow.
const OCSFVersion = "1.3.0"

// OCSF classes used.
const (
	ocsfDetectionFinding = 2004 // Findings category (2)
	ocsfAPIActivity      = 6003 // Application Activity category (6)
)

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

type ocsfMetadata struct {
	Version      string      `json:"version"`
	Product      ocsfProduct `json:"product"`
	UID          string      `json:"uid"`
	LogName      string      `json:"log_name,omitempty"`
	OriginalTime string      `json:"original_time,omitempty"`
}

// OCSF user types (user.type_id).
const ocsfUserSystem = 3

type ocsfUser struct {
	UID    string `json:"uid"`
	Type   string `json:"type,omitempty"`
	TypeID int    `json:"type_id,omitempty"`
}

type ocsfAuthorization struct {
	Decision string `json:"decision"`
}

type ocsfActor struct {
	User           ocsfUser            `json:"user"`
	Authorizations []ocsfAuthorization `json:"authorizations,omitempty"`
}

type ocsfResource struct {
	UID  string `json:"uid"`
	Type string `json:"type"`
}

type ocsfAnalytic struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
}

type ocsfFindingInfo struct {
	UID           string       `json:"uid"`
	Title         string       `json:"title"`
	Types         []string     `json:"types"`
	CreatedTime   int64        `json:"created_time"`
	FirstSeenTime int64        `json:"first_seen_time,omitempty"`
	Analytic      ocsfAnalytic `json:"analytic"`
	DataSources   []string     `json:"data_sources,omitempty"`
}

type ocsfEvidence struct {
	Actor *ocsfActor `json:"actor,omitempty"`
}

type ocsfService struct {
	Name string `json:"name"`
}

type ocsfAPI struct {
	Operation string      `json:"operation"`
	Service   ocsfService `json:"service"`
}

type ocsfEndpoint struct {
	IP string `json:"ip,omitempty"`
}

// ocsfEvent holds the attributes of both classes; the ones a class does not use stay
// empty and are omitted.
type ocsfEvent struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
	Time         int64  `json:"time"`
	Message      string `json:"message"`

	Metadata ocsfMetadata `json:"metadata"`

	// Detection Finding
	FindingInfo *ocsfFindingInfo `json:"finding_info,omitempty"`
	Evidences   []ocsfEvidence   `json:"evidences,omitempty"`

	// API Activity
	Actor       *ocsfActor    `json:"actor,omitempty"`
	API         *ocsfAPI      `json:"api,omitempty"`
	SrcEndpoint *ocsfEndpoint `json:"src_endpoint,omitempty"`

	Resources []ocsfResource `json:"resources,omitempty"`
	Unmapped  map[string]any `json:"unmapped,omitempty"`
}

// OCSFPayload renders an event as one OCSF 1.3 event: an alert.raised as a Detection
// Finding (class_uid 2004, activity Create); a phi.accessed, an agent.assigned, a
// report.executed and a checkpoint.signed as API Activity (class_uid 6003): accesses to
// ePHI, assignments that grant it, runs of compliance reports, custody signing its log.
// Any other type gives ErrNotForwarded. productVersion is metadata.product.version.
func OCSFPayload(e domain.Event, productVersion string) ([]byte, error) {
	f := factsOf(e)
	title, sev := titleAndSeverity(e, f)
	ev := ocsfEvent{
		SeverityID: sev,
		Severity:   severityNames[sev],
		Time:       millis(e.Time),
		Message:    title,
		Metadata: ocsfMetadata{
			Version: OCSFVersion,
			Product: ocsfProduct{Name: "custody", VendorName: "custody", Version: productVersion},
			UID:     e.ID,
		},
	}
	var resources []ocsfResource
	for _, id := range f.InteractionIDs {
		resources = append(resources, ocsfResource{UID: id, Type: "interaction"})
	}
	if f.RecordingID != "" {
		resources = append(resources, ocsfResource{UID: f.RecordingID, Type: "recording"})
	}
	ev.Resources = resources

	switch d := e.Data.(type) {
	case *domain.AlertRaised:
		ev.ClassUID, ev.ClassName = ocsfDetectionFinding, "Detection Finding"
		ev.CategoryUID, ev.CategoryName = 2, "Findings"
		ev.ActivityID, ev.ActivityName = 1, "Create"
		ev.StatusID, ev.Status = 1, "New"
		ev.Metadata.LogName = "CUSTODY_ALERTS"
		ev.FindingInfo = &ocsfFindingInfo{
			UID:         e.ID,
			Title:       title,
			Types:       []string{d.Rule},
			CreatedTime: millis(e.Time),
			Analytic:    ocsfAnalytic{UID: d.Rule, Name: d.Rule, Type: "Rule", TypeID: 1},
			DataSources: []string{e.Source},
		}
		if !d.TriggeredAt.IsZero() {
			ev.FindingInfo.FirstSeenTime = millis(d.TriggeredAt)
		}
		if d.AgentID != "" {
			ev.Evidences = []ocsfEvidence{{Actor: &ocsfActor{User: ocsfUser{UID: d.AgentID}}}}
		}
		if d.Count > 0 {
			ev.Unmapped = map[string]any{"count": d.Count}
		}
	case *domain.PHIAccessed:
		apiActivity(&ev, e)
		if d.Action == "forwarded" {
			ev.ActivityID, ev.ActivityName = 99, "Other"
		} else {
			ev.ActivityID, ev.ActivityName = 2, "Read"
		}
		ev.Actor = &ocsfActor{User: ocsfUser{UID: d.AgentID}}
		ev.API = &ocsfAPI{Operation: d.Action, Service: ocsfService{Name: e.Source}}
		ev.SrcEndpoint = &ocsfEndpoint{IP: d.RemoteIP}
		if d.RecipientMasked != "" {
			ev.Unmapped = map[string]any{"recipientMasked": d.RecipientMasked}
		}
	case *domain.AgentAssigned:
		apiActivity(&ev, e)
		ev.ActivityID, ev.ActivityName = 99, "Other"
		decision := "Unauthorized"
		if d.Authorized {
			decision = "Authorized"
		}
		ev.Actor = &ocsfActor{User: ocsfUser{UID: d.AgentID}, Authorizations: []ocsfAuthorization{{Decision: decision}}}
		ev.API = &ocsfAPI{Operation: "assign", Service: ocsfService{Name: e.Source}}
		ev.SrcEndpoint = &ocsfEndpoint{}
	case *domain.ReportExecuted:
		apiActivity(&ev, e)
		ev.ActivityID, ev.ActivityName = 2, "Read"
		ev.Metadata.LogName = "CUSTODY_REPORTS"
		ev.Actor = &ocsfActor{User: ocsfUser{UID: d.Actor}}
		ev.API = &ocsfAPI{Operation: "report." + d.Report, Service: ocsfService{Name: "custody"}}
		ev.SrcEndpoint = &ocsfEndpoint{}
		ev.Resources = []ocsfResource{{UID: d.Report, Type: "report"}}
		ev.Unmapped = map[string]any{"via": d.Via, "logPosition": d.LogPosition, "outputSha256": d.OutputSHA256}
	case *domain.CheckpointSigned:
		// custody's own operation on its log, like a report run: not a finding (nothing
		// needs a person), and System Activity's Event Log Activity numbers its
		// activities differently from one schema version to the next.
		apiActivity(&ev, e)
		ev.ActivityID, ev.ActivityName = 1, "Create"
		ev.Metadata.LogName = "CUSTODY_INTEGRITY"
		ev.Actor = &ocsfActor{User: ocsfUser{UID: "custody", Type: "System", TypeID: ocsfUserSystem}}
		ev.API = &ocsfAPI{Operation: "checkpoint.sign", Service: ocsfService{Name: "custody"}}
		ev.SrcEndpoint = &ocsfEndpoint{}
		ev.Resources = []ocsfResource{{UID: d.Origin, Type: "log"}}
		ev.Unmapped = map[string]any{"treeSize": d.TreeSize, "rootHash": d.RootHash, "origin": d.Origin, "note": d.Note}
	default:
		return nil, fmt.Errorf("ocsf %s: %w", e.Type, ErrNotForwarded)
	}
	ev.TypeUID = ev.ClassUID*100 + ev.ActivityID
	ev.TypeName = ev.ClassName + ": " + ev.ActivityName
	return marshal(ev)
}

func apiActivity(ev *ocsfEvent, e domain.Event) {
	ev.ClassUID, ev.ClassName = ocsfAPIActivity, "API Activity"
	ev.CategoryUID, ev.CategoryName = 6, "Application Activity"
	ev.StatusID, ev.Status = 1, "Success"
	ev.Metadata.LogName = "CUSTODY_EVENTS"
}
