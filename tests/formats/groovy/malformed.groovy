pipeline {
    stages {
        stage('Build' {
