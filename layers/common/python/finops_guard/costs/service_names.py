"""Cost Explorer SERVICE names, and the everyday names people write instead.

A budget scoped to `service: ["Amazon EC2"]` filters Cost Explorer on a value it never returns
(Cost Explorer says "Amazon Elastic Compute Cloud - Compute"), so the budget stays at zero and never
alerts. Offline we cannot ask Cost Explorer for its values (`GetDimensionValues` needs an account),
so this module keeps a **snapshot**: `KNOWN_SERVICES` is the list of SERVICE dimension values as
Cost Explorer spelled them when it was written, and AWS adds and renames services. It is used two
ways, deliberately unequal:

- a name in `ALIASES` (a short or marketing name, or a known name in other capitals) is certainly
  wrong: it is refused, with the name to write instead;
- a name neither known nor an alias may be a service newer than the snapshot: it is only warned on.
"""

from __future__ import annotations

EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"
EC2_OTHER = "EC2 - Other"

KNOWN_SERVICES = frozenset(
    {
        EC2_COMPUTE,
        EC2_OTHER,
        "AWS Amplify",
        "AWS App Runner",
        "AWS AppSync",
        "AWS Backup",
        "AWS Certificate Manager",
        "AWS CloudFormation",
        "AWS CloudShell",
        "AWS CloudTrail",
        "AWS CodeArtifact",
        "AWS CodeBuild",
        "AWS CodeCommit",
        "AWS CodePipeline",
        "AWS Config",
        "AWS Cost Explorer",
        "AWS Data Transfer",
        "AWS Database Migration Service",
        "AWS Direct Connect",
        "AWS Directory Service",
        "AWS Elemental MediaConvert",
        "AWS Global Accelerator",
        "AWS Glue",
        "AWS IoT",
        "AWS Key Management Service",
        "AWS Lambda",
        "AWS Migration Hub Refactor Spaces",
        "AWS Network Firewall",
        "AWS Secrets Manager",
        "AWS Security Hub",
        "AWS Service Catalog",
        "AWS Shield",
        "AWS Step Functions",
        "AWS Storage Gateway",
        "AWS Support (Business)",
        "AWS Support (Developer)",
        "AWS Support (Enterprise)",
        "AWS Systems Manager",
        "AWS Transfer Family",
        "AWS WAF",
        "AWS X-Ray",
        "Amazon API Gateway",
        "Amazon AppFlow",
        "Amazon Athena",
        "Amazon Bedrock",
        "Amazon CloudFront",
        "Amazon Cognito",
        "Amazon Comprehend",
        "Amazon Connect",
        "Amazon DocumentDB (with MongoDB compatibility)",
        "Amazon DynamoDB",
        "Amazon EC2 Container Registry (ECR)",
        "Amazon Elastic Container Registry (ECR)",
        "Amazon ElastiCache",
        "Amazon Elastic Container Service",
        "Amazon Elastic Container Service for Kubernetes",
        "Amazon Elastic File System",
        "Amazon Elastic Kubernetes Service",
        "Amazon Elastic Load Balancing",
        "Amazon Elastic MapReduce",
        "Amazon EventBridge",
        "Amazon FSx",
        "Amazon GuardDuty",
        "Amazon Inspector",
        "Amazon Kinesis",
        "Amazon Kinesis Firehose",
        "Amazon Lightsail",
        "Amazon Location Service",
        "Amazon MQ",
        "Amazon Macie",
        "Amazon Managed Streaming for Apache Kafka",
        "Amazon Neptune",
        "Amazon OpenSearch Service",
        "Amazon Polly",
        "Amazon QuickSight",
        "Amazon Redshift",
        "Amazon Registrar",
        "Amazon Rekognition",
        "Amazon Relational Database Service",
        "Amazon Route 53",
        "Amazon SageMaker",
        "Amazon Simple Email Service",
        "Amazon Simple Notification Service",
        "Amazon Simple Queue Service",
        "Amazon Simple Storage Service",
        "Amazon Textract",
        "Amazon Timestream",
        "Amazon Translate",
        "Amazon Virtual Private Cloud",
        "Amazon WorkSpaces",
        "AmazonCloudWatch",
        "Savings Plans for AWS Compute usage",
        "Tax",
    }
)

_SHORT_NAMES = {
    EC2_COMPUTE: ("Amazon EC2", "EC2", "AWS EC2", "Amazon Elastic Compute Cloud", "Elastic Compute Cloud"),
    EC2_OTHER: ("Amazon EBS", "EBS", "Amazon Elastic Block Store", "Elastic Block Store", "NAT Gateway"),
    "Amazon Simple Storage Service": ("Amazon S3", "S3", "AWS S3", "Simple Storage Service"),
    "Amazon Relational Database Service": ("Amazon RDS", "RDS", "AWS RDS", "Amazon Aurora", "Aurora"),
    "AWS Lambda": ("Lambda", "Amazon Lambda"),
    "Amazon DynamoDB": ("DynamoDB", "AWS DynamoDB"),
    "Amazon CloudFront": ("CloudFront", "AWS CloudFront"),
    "AmazonCloudWatch": ("CloudWatch", "Amazon CloudWatch", "AWS CloudWatch"),
    "Amazon Simple Queue Service": ("SQS", "Amazon SQS", "AWS SQS"),
    "Amazon Simple Notification Service": ("SNS", "Amazon SNS", "AWS SNS"),
    "Amazon Simple Email Service": ("SES", "Amazon SES", "AWS SES"),
    "Amazon Virtual Private Cloud": ("VPC", "Amazon VPC", "AWS VPC"),
    "AWS Key Management Service": ("KMS", "AWS KMS", "Amazon KMS"),
    "Amazon Elastic Container Service": ("ECS", "Amazon ECS", "AWS ECS", "AWS Fargate", "Fargate"),
    "Amazon Elastic Kubernetes Service": ("EKS", "Amazon EKS", "AWS EKS"),
    "Amazon Elastic File System": ("EFS", "Amazon EFS", "AWS EFS"),
    "Amazon OpenSearch Service": ("OpenSearch", "Amazon OpenSearch", "Amazon Elasticsearch Service"),
    "Amazon Route 53": ("Route 53", "Route53", "Amazon Route53", "AWS Route 53"),
    "AWS Secrets Manager": ("Secrets Manager", "Amazon Secrets Manager"),
    "AWS Step Functions": ("Step Functions", "Amazon Step Functions"),
    "Amazon API Gateway": ("API Gateway", "AWS API Gateway"),
    "Amazon Elastic Load Balancing": ("ELB", "Elastic Load Balancing", "AWS Elastic Load Balancing", "ALB", "NLB"),
    "Amazon Elastic MapReduce": ("EMR", "Amazon EMR", "AWS EMR"),
    "Amazon SageMaker": ("SageMaker", "AWS SageMaker"),
    "Amazon Redshift": ("Redshift", "AWS Redshift"),
    "Amazon ElastiCache": ("ElastiCache", "AWS ElastiCache"),
    "Amazon GuardDuty": ("GuardDuty", "AWS GuardDuty"),
    "Amazon Athena": ("Athena", "AWS Athena"),
    "AWS Glue": ("Glue", "Amazon Glue"),
}

# Everyday name (as written) -> the Cost Explorer name. A known name in other capitals is an alias
# too: Cost Explorer compares SERVICE values case-sensitively.
ALIASES: dict[str, str] = {alias: name for name, aliases in _SHORT_NAMES.items() for alias in aliases}
_BY_FOLDED = {name.casefold(): name for name in KNOWN_SERVICES} | {
    alias.casefold(): name for alias, name in ALIASES.items()
}


def cost_explorer_name_for(name: str) -> str | None:
    """The Cost Explorer SERVICE name an alias stands for; None for a known name or an unknown one."""
    if name in KNOWN_SERVICES:
        return None
    return _BY_FOLDED.get(" ".join(name.split()).casefold())


def is_known_service(name: str) -> bool:
    return name in KNOWN_SERVICES


def close_known_services(name: str) -> list[str]:
    """The known name spelled most like `name`, if any (for a warning's "did you mean")."""
    if len(name) > 120:  # longer than any service name; and difflib is quadratic
        return []
    import difflib  # only a misspelled budget scope needs it: not at every cold start

    return difflib.get_close_matches(name, sorted(KNOWN_SERVICES), n=1, cutoff=0.8)
