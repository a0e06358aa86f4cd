package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ecr"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Images this stack hosts: SmartScale itself and the demo application.
var repositoryNames = []string{"smartscale", "demo-app"}

// lifecyclePolicy keeps registry storage bounded: untagged layers go after a
// week, and only the newest 30 tagged images stay.
const lifecyclePolicy = `{"rules":[` +
	`{"rulePriority":1,"description":"drop untagged images after 7 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}},` +
	`{"rulePriority":2,"description":"keep the newest 30 images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":30},"action":{"type":"expire"}}]}`

func newRepositories(ctx *pulumi.Context, s settings) (map[string]*ecr.Repository, error) {
	repos := map[string]*ecr.Repository{}
	for _, name := range repositoryNames {
		repo, err := ecr.NewRepository(ctx, name, &ecr.RepositoryArgs{
			Name: pulumi.String(s.ClusterID + "/" + name),
			// Releases are immutable: a tag always means the same image.
			ImageTagMutability: pulumi.String("IMMUTABLE"),
			ImageScanningConfiguration: &ecr.RepositoryImageScanningConfigurationArgs{
				ScanOnPush: pulumi.Bool(true),
			},
			EncryptionConfigurations: ecr.RepositoryEncryptionConfigurationArray{
				&ecr.RepositoryEncryptionConfigurationArgs{EncryptionType: pulumi.String("AES256")},
			},
			ForceDelete: pulumi.Bool(s.ForceDestroy),
			Tags:        s.tags(name),
		})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
		if _, err := ecr.NewLifecyclePolicy(ctx, name, &ecr.LifecyclePolicyArgs{
			Repository: repo.Name,
			Policy:     pulumi.String(lifecyclePolicy),
		}); err != nil {
			return nil, fmt.Errorf("repository %s lifecycle: %w", name, err)
		}
		repos[name] = repo
	}
	return repos, nil
}
