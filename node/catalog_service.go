package node

import (
	"context"
	"errors"

	"github.com/yrd-exchange/yrdnode/internal/catalogspec"
	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
	"github.com/yrd-exchange/yrdnode/proto/yrd/v1/yrdv1grpc"
	"github.com/yrd-exchange/yrdnode/store"
)

// catalogService serves CatalogService on the client API. Writes go
// through raft (forwarded to the leader); reads come from the local
// replica after a read barrier unless the client asks for a stale read.
type catalogService struct {
	yrdv1grpc.UnimplementedCatalogServiceServer
	n *Node
}

// validDataset checks a dataset from a client and normalises it in place.
// d must be the handler's own: gRPC decodes a fresh request for every call,
// so no copy is needed.
func validDataset(d *yrdv1.Dataset) (*yrdv1.Dataset, error) {
	if d == nil {
		return nil, errorf(ErrInvalid, "dataset: required")
	}
	if err := catalogspec.Validate(d); err != nil {
		return nil, errorf(ErrInvalid, "%v", err)
	}
	return d, nil
}

func validID(field, id string) error {
	if err := catalogspec.ValidateID(id); err != nil {
		return errorf(ErrInvalid, "%s: %v", field, err)
	}
	return nil
}

func (s *catalogService) PublishDataset(ctx context.Context, req *yrdv1.PublishDatasetRequest) (*yrdv1.PublishDatasetResponse, error) {
	d, err := validDataset(req.GetDataset())
	if err != nil {
		return nil, err
	}
	res, err := s.n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_PublishDataset{PublishDataset: &yrdv1.PublishDatasetCommand{Dataset: d}}})
	if err != nil {
		return nil, err
	}
	return &yrdv1.PublishDatasetResponse{Dataset: res.GetDataset()}, nil
}

func (s *catalogService) UpdateDataset(ctx context.Context, req *yrdv1.UpdateDatasetRequest) (*yrdv1.UpdateDatasetResponse, error) {
	d, err := validDataset(req.GetDataset())
	if err != nil {
		return nil, err
	}
	if req.GetExpectedVersion() == 0 {
		return nil, errorf(ErrInvalid, "expected_version: required (the version the update is based on)")
	}
	res, err := s.n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_UpdateDataset{UpdateDataset: &yrdv1.UpdateDatasetCommand{
		Dataset: d, ExpectedVersion: req.GetExpectedVersion()}}})
	if err != nil {
		return nil, err
	}
	return &yrdv1.UpdateDatasetResponse{Dataset: res.GetDataset()}, nil
}

func (s *catalogService) RetireDataset(ctx context.Context, req *yrdv1.RetireDatasetRequest) (*yrdv1.RetireDatasetResponse, error) {
	if err := validID("id", req.GetId()); err != nil {
		return nil, err
	}
	res, err := s.n.propose(ctx, &yrdv1.Command{Op: &yrdv1.Command_RetireDataset{RetireDataset: &yrdv1.RetireDatasetCommand{
		Id: req.GetId(), ExpectedVersion: req.GetExpectedVersion()}}})
	if err != nil {
		return nil, err
	}
	return &yrdv1.RetireDatasetResponse{Dataset: res.GetDataset()}, nil
}

func validConsistency(c yrdv1.ReadConsistency) error {
	if _, ok := yrdv1.ReadConsistency_name[int32(c)]; !ok {
		return errorf(ErrInvalid, "consistency: unknown value %d (want LINEARIZABLE or STALE)", c)
	}
	return nil
}

func (s *catalogService) GetDataset(ctx context.Context, req *yrdv1.GetDatasetRequest) (*yrdv1.GetDatasetResponse, error) {
	if err := validID("id", req.GetId()); err != nil {
		return nil, err
	}
	if err := validConsistency(req.GetConsistency()); err != nil {
		return nil, err
	}
	if err := s.n.readBarrier(ctx, req.GetConsistency()); err != nil {
		return nil, err
	}
	d, ok := s.n.catalog.GetDataset(req.GetId())
	if !ok {
		return nil, errorf(ErrNotFound, "id: dataset %q not found", req.GetId())
	}
	return &yrdv1.GetDatasetResponse{Dataset: d}, nil
}

func (s *catalogService) ListDatasets(ctx context.Context, req *yrdv1.ListDatasetsRequest) (*yrdv1.ListDatasetsResponse, error) {
	if _, ok := yrdv1.ClassificationLevel_name[int32(req.GetLevel())]; !ok {
		return nil, errorf(ErrInvalid, "level: unknown value %d (want GENERAL, IMPORTANT or CORE)", req.GetLevel())
	}
	if req.GetPageSize() < 0 || req.GetPageSize() > 1000 {
		return nil, errorf(ErrInvalid, "page_size: %d is outside 0..1000", req.GetPageSize())
	}
	if err := validConsistency(req.GetConsistency()); err != nil {
		return nil, err
	}
	if err := s.n.readBarrier(ctx, req.GetConsistency()); err != nil {
		return nil, err
	}
	page, next, err := s.n.catalog.ListDatasets(store.ListFilter{
		OwnerCity:        req.GetOwnerCity(),
		OwnerOrg:         req.GetOwnerOrg(),
		Sector:           req.GetSector(),
		Level:            req.GetLevel(),
		Tag:              req.GetTag(),
		Text:             req.GetText(),
		StandardSchemaID: req.GetStandardSchemaId(),
		IncludeRetired:   req.GetIncludeRetired(),
		PageSize:         int(req.GetPageSize()),
		PageToken:        req.GetPageToken(),
	})
	if errors.Is(err, store.ErrInvalidPageToken) {
		return nil, errorf(ErrInvalid, "page_token: not a token this server issued")
	} else if err != nil {
		return nil, err
	}
	return &yrdv1.ListDatasetsResponse{Datasets: page, NextPageToken: next}, nil
}
